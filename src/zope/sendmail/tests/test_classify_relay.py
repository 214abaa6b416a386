"""The relay's conditions: replies and refusals classified by class."""
import unittest

from zope.sendmail.testserver import SMTPServerLayer


class ReplyTests(unittest.TestCase):

    def _classify(self, code, text):
        from zope.sendmail.classify import classify_reply
        return type(classify_reply(code, text.encode(), 'refused'))

    def test_too_fast(self):
        from zope.sendmail.relayinterfaces import ThrottledError
        for code, text in [
                (454, 'Throttling failure: Maximum sending rate exceeded'),
                (421, '4.7.0 Try again later, closing connection'),
                (450, '4.7.28 unusual rate of mail'),
                (451, '4.7.1 Please slow down'),
                (450, '4.2.1 The user is receiving mail at a rate that'
                      ' prevents additional messages'),
                (421, 'closing connection')]:
            self.assertIs(self._classify(code, text), ThrottledError, text)

    def test_quota(self):
        from zope.sendmail.relayinterfaces import QuotaExceededError
        for code, text in [
                (454, 'Throttling failure: Daily message quota exceeded'),
                (554, '5.2.0 STOREDRV.Submission.Exception:'
                      'SubmissionQuotaExceededException; Failed')]:
            self.assertIs(self._classify(code, text), QuotaExceededError)

    def test_others_keep_their_class(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.assertIs(self._classify(451, '4.3.0 try again later'),
                      TemporaryDeliveryError)
        self.assertIs(self._classify(452, '4.2.2 mailbox over quota'),
                      TemporaryDeliveryError)  # a recipient's, not ours
        self.assertIs(self._classify(550, '5.7.1 rate of spam too high'),
                      PermanentDeliveryError)

    def test_every_recipient_throttled(self):
        from zope.sendmail.classify import refused_error
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.relayinterfaces import ThrottledError
        throttled = (450, b'4.7.0 too many messages')
        self.assertIs(type(refused_error({'a': throttled, 'b': throttled})),
                      ThrottledError)
        self.assertIs(type(refused_error({'a': throttled,
                                          'b': (451, b'4.3.0 later')})),
                      TemporaryDeliveryError)

    def test_all_are_temporary_errors(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.relayinterfaces import QuotaExceededError
        from zope.sendmail.relayinterfaces import RelayBusyError
        from zope.sendmail.relayinterfaces import ThrottledError
        for cls in (QuotaExceededError, RelayBusyError, ThrottledError):
            self.assertTrue(issubclass(cls, TemporaryDeliveryError))


class ConnectTests(unittest.TestCase):

    layer = SMTPServerLayer

    def _connect(self, port=None):
        from zope.sendmail.mailer import SMTPMailer
        server = self.layer.server
        mailer = SMTPMailer(server.host, port or server.port, timeout=5)
        connection = mailer.connect()
        self.addCleanup(connection.close)
        return connection

    def test_432_greeting_is_a_busy_relay(self):
        from zope.sendmail.relayinterfaces import RelayBusyError
        self.layer.server.max_connections = 0
        with self.assertRaises(RelayBusyError) as caught:
            self._connect()
        self.assertEqual(caught.exception.code, 432)
        self.assertIn('turned away: 432 4.3.2', str(caught.exception))

    def test_reset_in_the_handshake_is_a_busy_relay(self):
        from zope.sendmail.relayinterfaces import RelayBusyError
        for point in ('connect', 'ehlo'):
            self.layer.server.drop_at = point
            with self.assertRaises(RelayBusyError):
                self._connect()

    def test_nobody_listening_is_unreachable_not_busy(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.relayinterfaces import RelayBusyError
        from zope.sendmail.tests.support import closed_port
        with self.assertRaises(TemporaryDeliveryError) as caught:
            self._connect(closed_port())
        self.assertNotIsInstance(caught.exception, RelayBusyError)

    def test_throttling_421_on_a_reused_connection_is_not_a_reconnect(self):
        from zope.sendmail.relayinterfaces import ThrottledError
        server = self.layer.server
        connection = self._connect()
        connection.send('a@example.com', ['b@example.com'], b'\r\n1\r\n')
        server.fail_mail(421, '4.7.0 Try again later, closing connection')
        with self.assertRaises(ThrottledError):
            connection.send('a@example.com', ['b@example.com'], b'\r\n2\r\n')
        self.assertEqual(server.connections, 1)
