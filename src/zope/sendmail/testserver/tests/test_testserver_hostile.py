"""The test server playing hostile relays, driven by plain smtplib: an
endless reply, a trickled greeting, STARTTLS not offered or refused."""
import smtplib
import time

from zope.sendmail.tests.support.server import ServerTestCase
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import TLSSMTPServerLayer
from zope.sendmail.testserver import make_layer


PlainAuthLayer = make_layer('PlainAuthLayer', auth={TEST_USER: TEST_PASSWORD})


def read_lines(smtp, n):
    """The next *n* reply lines smtplib's socket has, read raw (smtplib's
    getreply would read an endless reply for ever)."""
    reader = smtp.sock.makefile('rb')
    try:
        return [reader.readline() for _ in range(n)]
    finally:
        reader.close()


class EndlessReplyTests(ServerTestCase):

    layer = SMTPServerLayer

    def test_endless_reply_to_ehlo(self):
        self.server.endless_reply = 'EHLO'
        smtp = self.connect()
        smtp.putcmd('ehlo', 'client.example')
        lines = read_lines(smtp, 5000)
        # smtplib would take every one: each is a continuation line.
        self.assertEqual(lines[0], b'250-endless 1\r\n')
        self.assertEqual(lines[-1], b'250-endless 5000\r\n')
        self.assertGreaterEqual(self.server.endless_lines, 5000)
        smtp.close()
        self.server.wait_until_idle()
        sent = self.server.endless_lines
        time.sleep(0.1)
        self.assertEqual(self.server.endless_lines, sent)  # it stopped
        self.assertIn('S: <endless reply>', self.server.transcript())

    def test_endless_greeting_and_end_of_data(self):
        self.server.endless_reply = 'greeting'
        smtp = smtplib.SMTP(timeout=5)
        self.addCleanup(smtp.close)
        smtp.sock = smtp._get_socket(self.server.host, self.server.port, 5)
        self.assertEqual(read_lines(smtp, 3)[2], b'220-endless 3\r\n')
        smtp.close()
        self.server.reset()
        self.server.endless_reply = 'dot'
        smtp = self.connect()
        smtp.ehlo()
        smtp.mail('sender@example.com')
        smtp.rcpt('rcpt@example.com')
        smtp.putcmd('data')
        self.assertEqual(smtp.getreply()[0], 354)
        smtp.send(b'Subject: x\r\n\r\nbody\r\n.\r\n')
        self.assertEqual(read_lines(smtp, 200)[199], b'250-endless 200\r\n')

    def test_points_are_checked_and_reset_clears(self):
        with self.assertRaises(ValueError):
            self.server.endless_reply = 'ehlo'  # commands in capitals
        self.server.endless_reply = 'MAIL'
        self.server.trickle = 5
        self.server.reset()
        self.assertIsNone(self.server.endless_reply)
        self.assertIsNone(self.server.trickle)
        self.assertEqual(self.server.endless_lines, 0)
        with self.connect() as smtp:
            self.send(smtp)

    def test_a_client_that_stops_reading_does_not_hold_up_stop(self):
        from zope.sendmail.testserver import SMTPTestServer
        server = SMTPTestServer().start()
        try:
            server.endless_reply = 'EHLO'
            smtp = smtplib.SMTP(server.host, server.port, timeout=5)
            self.addCleanup(smtp.close)
            smtp.putcmd('ehlo', 'client.example')
            time.sleep(0.2)  # the server fills the socket's buffers
        finally:
            start = time.monotonic()
            server.stop()
        self.assertLess(time.monotonic() - start, 5)


class TrickleTests(ServerTestCase):

    layer = SMTPServerLayer

    def test_a_trickled_greeting_never_trips_the_timeout(self):
        # 200 bytes a second: the greeting takes a fraction of a second
        # more than the timeout of each read, and smtplib takes it.
        self.server.trickle = 200
        start = time.monotonic()
        smtp = smtplib.SMTP(self.server.host, self.server.port,
                            timeout=0.1)
        self.addCleanup(smtp.close)
        took = time.monotonic() - start
        greeting = [line for line in self.server.transcript()
                    if line.startswith('S: 220')]
        self.assertGreater(len(greeting[0]), 20)
        self.assertGreater(took, (len(greeting[0]) - 3) / 200 * 0.8)
        self.assertGreater(took, 0.1)
        self.assertEqual(smtp.ehlo()[0], 250)  # the rest at full speed


class StartTLSTests(ServerTestCase):

    layer = TLSSMTPServerLayer

    def test_offered_then_refused(self):
        self.server.refuse_starttls()
        with self.connect() as smtp:
            smtp.ehlo()
            self.assertTrue(smtp.has_extn('starttls'))
            with self.assertRaises(smtplib.SMTPResponseException) as caught:
                smtp.starttls(context=self.server.client_context())
            self.assertEqual(caught.exception.smtp_code, 454)
            self.assertIn(b'4.7.0 TLS not available',
                          caught.exception.smtp_error)
            # AUTH is offered only after STARTTLS, which did not happen.
            self.assertFalse(smtp.has_extn('auth'))
        with self.assertRaises(ValueError):
            self.server.refuse_starttls(220, 'go ahead')
        self.server.reset()
        with self.connect() as smtp:
            self.assertEqual(
                smtp.starttls(context=self.server.client_context())[0], 220)


class NoStartTLSTests(ServerTestCase):

    layer = PlainAuthLayer

    def test_not_offered_and_auth_in_clear(self):
        with self.connect() as smtp:
            smtp.ehlo()
            self.assertFalse(smtp.has_extn('starttls'))
            self.assertEqual(smtp.esmtp_features['auth'].split(),
                             ['LOGIN', 'PLAIN'])
            smtp.login(TEST_USER, TEST_PASSWORD)
            self.send(smtp)
        [message] = self.server.wait_for(1)
        self.assertFalse(message.tls)
        self.assertEqual(message.auth_user, TEST_USER)
        self.assertTrue(any(line.startswith('C: AUTH PLAIN ')
                            for line in self.server.transcript()))
