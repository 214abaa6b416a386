"""The test server's relay limits: concurrent connections and a rate."""
import smtplib
import time

from zope.sendmail.tests.support.server import ServerTestCase
from zope.sendmail.testserver import SMTPServerLayer


class LimitTests(ServerTestCase):

    layer = SMTPServerLayer

    def test_connections_past_the_limit_get_432(self):
        self.server.max_connections = 2
        first, second = self.connect(), self.connect()
        with self.assertRaises(smtplib.SMTPConnectError) as caught:
            self.connect()
        self.assertEqual(caught.exception.smtp_code, 432)
        self.assertIn(b'4.3.2 Concurrent connections limit exceeded',
                      caught.exception.smtp_error)
        self.assertEqual(self.server.turned_away, 1)
        # A session that said QUIT no longer counts.
        first.quit()
        third = self.connect()
        self.send(third)
        self.send(second)
        self.assertEqual(len(self.server.messages), 2)

    def test_messages_past_the_rate_get_454_at_mail(self):
        self.server.max_rate = 3
        smtp = self.connect()
        for n in range(20):  # bounded, however slow the machine
            try:
                self.send(smtp)
            except smtplib.SMTPSenderRefused as e:
                refused = e
                break
        self.assertEqual(refused.smtp_code, 454)
        self.assertIn(b'4.7.0 Throttling failure: Maximum sending rate'
                      b' exceeded', refused.smtp_error)
        self.assertEqual(self.server.throttled, 1)
        self.assertGreaterEqual(len(self.server.messages), 3)
        smtp.rset()
        time.sleep(1.0)
        self.send(smtp)

    def test_reset_lifts_the_limits(self):
        self.server.max_connections, self.server.max_rate = 0, 0
        self.server.reset()
        self.send(self.connect())
        self.assertEqual((self.server.turned_away, self.server.throttled),
                         (0, 0))
