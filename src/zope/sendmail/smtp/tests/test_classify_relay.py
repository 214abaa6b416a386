"""The relay's conditions: replies and refusals classified by class."""
import unittest

from zope.sendmail.testserver import SMTPServerLayer


class ReplyTests(unittest.TestCase):

    def _classify(self, code, text):
        from zope.sendmail.smtp.classify import classify_reply
        return type(classify_reply(code, text.encode(), 'refused'))

    def test_too_fast(self):
        from zope.sendmail.interfaces import ThrottledError
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
        from zope.sendmail.interfaces import QuotaExceededError
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

    def test_a_bare_4_7_status_is_not_too_fast(self):
        # Greylisting and policy refusals share 4.7.x with rate limits.
        from zope.sendmail.interfaces import TemporaryDeliveryError
        for text in ['4.7.1 Greylisted, please try again later',
                     '4.7.1 Service unavailable; client host blocked']:
            self.assertIs(self._classify(451, text), TemporaryDeliveryError)

    def test_a_recipient_cap_is_not_too_fast(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.assertIs(self._classify(452, '4.5.3 Too many recipients'),
                      TemporaryDeliveryError)
        self.assertIs(self._classify(452, 'Error: too many recipients'),
                      TemporaryDeliveryError)

    def test_every_recipient_throttled(self):
        from zope.sendmail.smtp.classify import refused_error
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.interfaces import ThrottledError
        throttled = (450, b'4.7.0 too many messages')
        self.assertIs(type(refused_error({'a': throttled, 'b': throttled})),
                      ThrottledError)
        self.assertIs(type(refused_error({'a': throttled,
                                          'b': (451, b'4.3.0 later')})),
                      TemporaryDeliveryError)

    def test_all_are_temporary_errors(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.interfaces import QuotaExceededError
        from zope.sendmail.interfaces import RelayBusyError
        from zope.sendmail.interfaces import ThrottledError
        for cls in (QuotaExceededError, RelayBusyError, ThrottledError):
            self.assertTrue(issubclass(cls, TemporaryDeliveryError))


class ConnectTests(unittest.TestCase):

    layer = SMTPServerLayer

    def _connect(self, port=None):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        mailer = SMTPMailer(server.host, port or server.port, timeout=5)
        connection = mailer.connect()
        self.addCleanup(connection.close)
        return connection

    def test_432_greeting_is_a_busy_relay(self):
        from zope.sendmail.interfaces import RelayBusyError
        self.layer.server.max_connections = 0
        with self.assertRaises(RelayBusyError) as caught:
            self._connect()
        self.assertEqual(caught.exception.code, 432)
        self.assertIn('turned away: 432 4.3.2', str(caught.exception))

    def test_reset_in_the_handshake_is_a_busy_relay(self):
        from zope.sendmail.interfaces import RelayBusyError
        for point in ('connect', 'ehlo'):
            self.layer.server.drop_at = point
            with self.assertRaises(RelayBusyError):
                self._connect()

    def test_nobody_listening_is_unreachable_not_busy(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.interfaces import RelayBusyError
        from zope.sendmail.tests.support import closed_port
        with self.assertRaises(TemporaryDeliveryError) as caught:
            self._connect(closed_port())
        self.assertNotIsInstance(caught.exception, RelayBusyError)

    def test_throttling_421_on_a_reused_connection_is_not_a_reconnect(self):
        from zope.sendmail.interfaces import ThrottledError
        server = self.layer.server
        connection = self._connect()
        connection.send('a@example.com', ['b@example.com'], b'\r\n1\r\n')
        server.fail_mail(421, '4.7.0 Try again later, closing connection')
        with self.assertRaises(ThrottledError):
            connection.send('a@example.com', ['b@example.com'], b'\r\n2\r\n')
        self.assertEqual(server.connections, 1)


class StageTests(unittest.TestCase):
    """Whose reply it is: the command it answers decides."""

    def _classify(self, code, text, stage):
        from zope.sendmail.smtp.classify import classify_reply
        return type(classify_reply(code, text.encode(), 'refused',
                                   stage=stage))

    def test_mail_from_4_7_paces_the_relay(self):
        from zope.sendmail.smtp.classify import MAIL
        from zope.sendmail.interfaces import ThrottledError
        for text in ['4.7.0 Try again later', '4.7.0 Throttling failure']:
            self.assertIs(self._classify(451, text, MAIL), ThrottledError)

    def test_mail_from_other_4xx_is_the_messages(self):
        from zope.sendmail.smtp.classify import MAIL
        from zope.sendmail.interfaces import TemporaryDeliveryError
        for text in ['4.3.0 Temporary lookup failure',
                     '4.1.8 Sender address rejected: Domain not found']:
            self.assertIs(self._classify(451, text, MAIL),
                          TemporaryDeliveryError)

    def test_data_4_7_is_the_messages(self):
        # Greylisting at the end of DATA (rspamd), a DMARC check failing
        # for now: a verdict on this message, not the relay's pace.
        from zope.sendmail.smtp.classify import DATA
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.interfaces import ThrottledError
        self.assertIs(self._classify(451, '4.7.1 Try again later', DATA),
                      TemporaryDeliveryError)
        self.assertIs(self._classify(454, '4.7.0 Throttling failure:'
                                     ' Maximum sending rate exceeded', DATA),
                      ThrottledError)
        self.assertIs(self._classify(421, '4.3.2 closing', DATA),
                      ThrottledError)

    def test_rcpt_replies_about_the_recipient(self):
        from zope.sendmail.smtp.classify import RCPT
        from zope.sendmail.smtp.classify import is_throttling
        for code, text in [
                (451, '4.7.1 Greylisted, please try again later'),
                (450, '4.2.1 The user you are trying to contact is receiving'
                      ' mail at a rate that prevents additional messages'),
                (452, '4.2.2 mailbox over quota'),
                (452, '4.5.3 Too many recipients')]:
            self.assertFalse(is_throttling(code, text.encode(), RCPT), text)
        self.assertTrue(is_throttling(
            454, b'4.7.0 Throttling failure: Maximum sending rate exceeded',
            RCPT))

    def test_every_recipient_greylisted_is_temporary_not_throttled(self):
        from zope.sendmail.smtp.classify import refused_error
        from zope.sendmail.interfaces import TemporaryDeliveryError
        grey = (451, b'4.7.1 Greylisted, please try again later')
        error = refused_error({'a@x.example': grey, 'b@x.example': grey})
        self.assertIs(type(error), TemporaryDeliveryError)

    def test_every_recipient_over_the_daily_quota(self):
        from zope.sendmail.smtp.classify import refused_error
        from zope.sendmail.interfaces import QuotaExceededError
        quota = (454, b'4.7.0 Daily message quota exceeded')
        self.assertIs(type(refused_error({'a@x.example': quota})),
                      QuotaExceededError)


class CapTests(unittest.TestCase):

    def test_is_cap(self):
        from zope.sendmail.smtp.classify import is_cap
        for code, text in [(452, '4.5.3 Too many recipients'),
                           (452, 'Error: too many recipients'),
                           (552, '5.5.3 Too many recipients'),
                           (452, 'Too many rcpts')]:
            self.assertTrue(is_cap(code, text.encode()), text)
        for code, text in [(452, '4.2.2 Mailbox full'),
                           (451, '4.5.3 Too many recipients'),
                           (550, '5.1.1 no such user')]:
            self.assertFalse(is_cap(code, text.encode()), text)

    def test_a_552_cap_is_not_permanent(self):
        # RFC 5321 4.5.3.1.10: a client takes 552 "too many recipients"
        # as 452, so that the rest go in another transaction.
        from zope.sendmail.smtp.classify import is_permanent
        from zope.sendmail.smtp.classify import refused_error
        from zope.sendmail.interfaces import TemporaryDeliveryError
        cap = (552, b'5.5.3 Too many recipients')
        self.assertFalse(is_permanent(*cap))
        self.assertTrue(is_permanent(550, b'5.1.1 no such user'))
        self.assertIs(type(refused_error({'a@x.example': cap})),
                      TemporaryDeliveryError)


class RefusedTextTests(unittest.TestCase):

    def test_a_few_and_a_count(self):
        from zope.sendmail.smtp.classify import refused_text
        refused = {f'r{n}@x.example': (550, b'5.1.1 no such user')
                   for n in range(10000)}
        text = refused_text(refused)
        self.assertEqual(
            text, 'recipients refused: r0@x.example: 550 5.1.1 no such user;'
            ' r1@x.example: 550 5.1.1 no such user; r2@x.example: 550 5.1.1'
            ' no such user and 9997 more')
        self.assertEqual(refused_text(refused, shown=None).count(';'), 9999)
        self.assertEqual(refused_text(dict(list(refused.items())[:3])),
                         text.replace(' and 9997 more', ''))
