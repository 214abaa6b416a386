"""Tests of the bounded smtplib client (smtpclient.py) against the test
server: bounded replies, the streamed DATA, UTF-8 credentials."""
import smtplib
import time
import unittest

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.utf8auth import PASSWORD
from zope.sendmail.tests.support.utf8auth import UTF8AuthLayer


class _ClientTestCase(unittest.TestCase):

    def _getTargetClass(self):
        from zope.sendmail.smtp.client import BoundedSMTP
        return BoundedSMTP

    def _makeOne(self, timeout=5, **attributes):
        smtp = self._getTargetClass()(timeout=timeout)
        self.addCleanup(smtp.close)
        for name, value in attributes.items():
            setattr(smtp, name, value)
        return smtp

    def _connect(self, smtp):
        server = self.layer.server
        return smtp.connect(server.host, server.port)


class BoundedReplyTests(_ClientTestCase):

    layer = SMTPServerLayer

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IBoundedSMTP
        from zope.sendmail.smtp.client import BoundedSMTP_SSL
        self.assertTrue(verifyObject(IBoundedSMTP, self._makeOne()))
        self.assertTrue(verifyObject(IBoundedSMTP, BoundedSMTP_SSL()))

    def test_an_ordinary_conversation(self):
        smtp = self._makeOne()
        self.assertEqual(self._connect(smtp)[0], 220)
        self.assertEqual(smtp.ehlo()[0], 250)
        self.assertTrue(smtp.has_extn('size'))
        self.assertEqual(smtp.sendmail('a@example.com', ['b@example.com'],
                                       b'Subject: x\r\n\r\n.hi\r\n'), {})
        self.assertEqual(self.layer.server.messages[0].data,
                         b'Subject: x\r\n\r\n.hi\r\n')

    def test_endless_reply_to_ehlo(self):
        from zope.sendmail.smtp.client import MAX_REPLY_LINES
        from zope.sendmail.smtp.client import ReplyLimitError
        server = self.layer.server
        server.endless_reply = 'EHLO'
        smtp = self._makeOne()
        self._connect(smtp)
        with self.assertRaises(ReplyLimitError) as caught:
            smtp.ehlo()
        self.assertEqual(caught.exception.bound, 'lines')
        self.assertEqual(
            str(caught.exception),
            f'the reply to EHLO of the relay {server.host}:{server.port}'
            f' had more than {MAX_REPLY_LINES} lines')
        self.assertIsNone(smtp.sock)  # closed: the stream is lost
        server.wait_until_idle()

    def test_lines_and_bytes_are_counted(self):
        from zope.sendmail.smtp.client import ReplyLimitError
        for bound, attributes in [('lines', {'max_reply_lines': 3}),
                                  ('bytes', {'max_reply_bytes': 40})]:
            with self.subTest(bound=bound):
                smtp = self._makeOne(**attributes)
                self._connect(smtp)
                # The test server's EHLO reply: 5 lines, 80 bytes.
                with self.assertRaises(ReplyLimitError) as caught:
                    smtp.ehlo()
                self.assertEqual(caught.exception.bound, bound)

    def test_endless_greeting_and_end_of_data(self):
        from zope.sendmail.smtp.client import ReplyLimitError
        server = self.layer.server
        server.endless_reply = 'greeting'
        with self.assertRaisesRegex(ReplyLimitError, '^the greeting of'):
            self._connect(self._makeOne())
        server.endless_reply = 'dot'
        smtp = self._makeOne()
        self._connect(smtp)
        with self.assertRaisesRegex(ReplyLimitError,
                                    '^the reply to end of DATA of'):
            smtp.sendmail('a@example.com', ['b@example.com'], b'x')

    def test_trickled_greeting_meets_the_deadline(self):
        from zope.sendmail.smtp.client import ReplyLimitError
        self.layer.server.trickle = 10  # bytes a second: 3 s or more
        smtp = self._makeOne(timeout=0.2)
        start = time.monotonic()
        with self.assertRaises(ReplyLimitError) as caught:
            self._connect(smtp)
        took = time.monotonic() - start
        self.assertEqual(caught.exception.bound, 'deadline')
        self.assertIn('was not complete within 0.6 s (3 times the'
                      ' timeout)', str(caught.exception))
        self.assertGreaterEqual(took, 0.6)
        self.assertLess(took, 2.5)  # generous; the greeting takes 3 s

    def test_a_slow_reply_within_the_deadline(self):
        self.layer.server.delay = 0.3
        smtp = self._makeOne(timeout=0.5)
        self.assertEqual(self._connect(smtp)[0], 220)
        self.assertEqual(smtp.ehlo()[0], 250)
        # The socket's own timeout is what it was, between replies.
        self.assertEqual(smtp.sock.gettimeout(), 0.5)

    def test_no_deadline_without_a_timeout(self):
        smtp = self._makeOne(timeout=None)
        self.assertEqual(self._connect(smtp)[0], 220)
        self.assertEqual(smtp.noop()[0], 250)

    def test_data_streams_a_view(self):
        server = self.layer.server
        smtp = self._makeOne()
        self._connect(smtp)
        data = b'X-Zope-From: a@x\n' + b'.dot\r\n' * 100000
        view = memoryview(data)[data.index(b'.'):]
        smtp.ehlo()
        smtp.mail('a@example.com')
        smtp.rcpt('b@example.com')
        self.assertEqual(smtp.data(view)[0], 250)
        self.assertEqual(server.messages[0].data, bytes(view))
        self.assertIn('C: <message>', server.transcript())

    def test_data_refused(self):
        smtp = self._makeOne()
        self._connect(smtp)
        smtp.ehlo()
        with self.assertRaises(smtplib.SMTPDataError) as caught:
            smtp.data(b'x')  # no MAIL, no RCPT
        self.assertEqual(caught.exception.smtp_code, 503)


class CredentialTests(_ClientTestCase):

    layer = UTF8AuthLayer

    def test_utf8_plain_and_login(self):
        server = self.layer.server
        for mechanism in ('PLAIN', 'LOGIN'):
            with self.subTest(mechanism=mechanism):
                smtp = self._makeOne()
                self._connect(smtp)
                smtp.ehlo()
                # Offer only this mechanism, as a relay might.
                smtp.esmtp_features['auth'] = mechanism
                self.assertEqual(smtp.login('jörg', PASSWORD)[0], 235)
                smtp.sendmail('a@example.com', ['b@example.com'], b'x')
                self.assertEqual(server.messages[-1].auth_user, 'jörg')

    def test_wrong_password_names_none_of_it(self):
        smtp = self._makeOne()
        self._connect(smtp)
        with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
            smtp.login('jörg', 'wröng-€')
        self.assertEqual(caught.exception.smtp_code, 535)
        text = repr(caught.exception) + str(caught.exception.__context__)
        self.assertNotIn('wröng', text)
        for character in 'ö€':
            self.assertNotIn(character, text)

    def test_a_lone_surrogate(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        smtp = self._makeOne()
        self._connect(smtp)
        with self.assertRaises(MailerConfigurationError) as caught:
            smtp.login('jörg', 'x\udcfcy')
        self.assertEqual(
            str(caught.exception), 'the credentials for AUTH PLAIN cannot'
            ' be encoded as UTF-8 (they hold a lone surrogate)')
        self.assertIsNone(caught.exception.__context__)
        self.assertFalse([line for line in self.layer.server.transcript()
                          if line.startswith('C: AUTH')])

    def test_cram_md5_in_utf8(self):
        # The test server offers no CRAM-MD5: the response is checked
        # against RFC 2195's computation, with the password as UTF-8.
        import hmac
        smtp = self._makeOne()
        smtp.user, smtp.password = 'jörg', PASSWORD
        self.assertEqual(
            smtp.auth_cram_md5(b'<1896.697170952@example.com>'),
            'jörg ' + hmac.HMAC(PASSWORD.encode('utf-8'),
                                b'<1896.697170952@example.com>',
                                'md5').hexdigest())
        self.assertIsNone(smtp.auth_cram_md5())
