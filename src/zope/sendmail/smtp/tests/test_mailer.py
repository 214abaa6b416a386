"""Tests of SMTPMailer over the wire, against the test SMTP server."""

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support.mailer import MESSAGE
from zope.sendmail.tests.support.mailer import MailerTestBase


class SMTPMailerTests(MailerTestBase):

    layer = SMTPServerLayer

    def test_provides_interfaces(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailerConnection
        from zope.sendmail.interfaces import ISMTPMailer
        mailer = self._makeOne()
        verifyObject(ISMTPMailer, mailer)
        with mailer.connect() as connection:
            verifyObject(IMailerConnection, connection)

    def test_73_attributes(self):
        import smtplib
        mailer = self._getTargetClass()(
            'relay.example.com', 2525, 'user', 'pw', no_tls=True,
            timeout=3)
        self.assertEqual(
            (mailer.hostname, mailer.port, mailer.username, mailer.password,
             mailer.no_tls, mailer.force_tls, mailer.implicit_tls,
             mailer.timeout),
            ('relay.example.com', 2525, 'user', 'pw', True, False, False, 3))
        self.assertIs(mailer.smtp, smtplib.SMTP)
        self.assertIs(self._getTargetClass()(implicit_tls=True).smtp,
                      smtplib.SMTP_SSL)
        self.assertIs(self._getTargetClass().smtp, smtplib.SMTP)

    def test_contradictory_options(self):
        with self.assertRaisesRegex(ValueError, 'no_tls contradicts'):
            self._getTargetClass()(no_tls=True, force_tls=True)
        with self.assertRaisesRegex(ValueError, 'no_tls contradicts'):
            self._getTargetClass()(no_tls=True, implicit_tls=True)

    def test_send_without_vote(self):
        server = self.layer.server
        refused = self._send(self._makeOne(),
                             ['bob@example.com', '"Doe, Jo" <jo@example.com>'])
        self.assertEqual(refused, {})
        [message] = server.messages
        self.assertEqual(message.mail_from, 'alice@example.com')
        self.assertEqual(message.rcpt_tos, ['bob@example.com',
                                            'jo@example.com'])
        self.assertEqual(message.data, MESSAGE)
        server.wait_until_idle()

    def test_crlf_on_the_wire(self):
        server = self.layer.server
        self._send(self._makeOne(),
                   message=b'Subject: lf\n\nline 1\nline 2\r\nline 3\r')
        [message] = server.messages
        self.assertEqual(message.data,
                         b'Subject: lf\r\n\r\nline 1\r\nline 2\r\nline 3\r\n')

    def test_subclass_without_init(self):
        server = self.layer.server

        class PatchedMailer(self._getTargetClass()):
            def __init__(self, hostname, port):
                # Like Plone's patch: never calls the base __init__.
                self.hostname, self.port = hostname, port
                self.username = self.password = None
                self.no_tls = self.force_tls = False

        self._send(PatchedMailer(server.host, server.port))
        self.assertEqual(len(server.messages), 1)

    def test_vote_then_send_uses_one_connection(self):
        server = self.layer.server
        mailer = self._makeOne()
        mailer.vote('alice@example.com', ['bob@example.com'], MESSAGE)
        self._send(mailer)
        self.assertEqual(server.connections, 1)
        server.wait_until_idle()

    def test_vote_then_abort_closes(self):
        server = self.layer.server
        mailer = self._makeOne()
        mailer.vote('alice@example.com', ['bob@example.com'], MESSAGE)
        self.assertEqual(server.open_connections, 1)
        mailer.abort()
        mailer.abort()
        server.wait_until_idle()
        self.assertEqual(server.messages, [])

    def test_many_messages_over_one_connection(self):
        server = self.layer.server
        with self._makeOne().connect() as connection:
            for i in range(20):
                connection.send('alice@example.com', ['bob@example.com'],
                                b'Subject: %d\r\n\r\nx\r\n' % i)
        self.assertEqual(server.connections, 1)
        self.assertEqual(len(server.messages), 20)
        server.wait_until_idle()

    def test_reconnects_when_the_relay_dropped_the_connection(self):
        server = self.layer.server
        with self._makeOne().connect() as connection:
            connection.send('alice@example.com', ['bob@example.com'], MESSAGE)
            server.drop_once, server.drop_at = True, 'mail'
            connection.send('alice@example.com', ['bob@example.com'], MESSAGE)
        self.assertEqual(len(server.messages), 2)
        self.assertEqual(server.connections, 2)

    def test_connection_usable_after_a_failure(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        server = self.layer.server
        with self._makeOne().connect() as connection:
            with self.assertRaises(PermanentDeliveryError):
                connection.send('alice@example.com', ['reject@example.com'],
                                MESSAGE)
            connection.send('alice@example.com', ['bob@example.com'], MESSAGE)
        self.assertEqual(len(server.messages), 1)
        self.assertEqual(server.connections, 1)

    def test_failing_quit_is_not_a_failure(self):
        server = self.layer.server
        server.drop_at = 'quit'
        self._send(self._makeOne())
        self.assertEqual(len(server.messages), 1)

    def test_helo_fallback(self):
        server = self.layer.server
        server.refuse_ehlo = True
        self._send(self._makeOne())
        self.assertEqual(len(server.messages), 1)


class ClassificationTests(MailerTestBase):
    """Each failure surfaces as the right MailDeliveryError subclass."""

    layer = SMTPServerLayer

    def assertFails(self, cls, pattern, **kw):
        with self.assertRaisesRegex(cls, pattern) as caught:
            self._send(self._makeOne(**kw), **self.send_kw)
        self.layer.server.wait_until_idle()
        return caught.exception

    send_kw = {}

    def test_some_recipients_refused_are_reported(self):
        refused = self._send(self._makeOne(),
                             ['bob@example.com', 'reject@example.com',
                              'tempfail@example.com'])
        self.assertEqual(sorted(refused), ['reject@example.com',
                                           'tempfail@example.com'])
        self.assertEqual(refused['reject@example.com'][0], 550)
        self.assertEqual(refused['tempfail@example.com'][0], 451)
        self.assertEqual(self.layer.server.messages[0].rcpt_tos,
                         ['bob@example.com'])

    def test_all_recipients_refused_permanently(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        self.send_kw = {'toaddrs': ['reject@example.com',
                                    'reject2@example.com']}
        error = self.assertFails(PermanentDeliveryError,
                                 'all recipients refused: reject@')
        self.assertEqual(sorted(error.recipients),
                         ['reject2@example.com', 'reject@example.com'])
        self.assertEqual(error.code, 550)

    def test_some_refused_temporarily_is_temporary(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.send_kw = {'toaddrs': ['reject@example.com',
                                    'tempfail@example.com']}
        error = self.assertFails(TemporaryDeliveryError, 'all recipients')
        self.assertEqual(error.recipients['tempfail@example.com'][0], 451)

    def test_data_451_is_temporary(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.layer.server.fail_data(451, '4.3.0 try again later')
        error = self.assertFails(TemporaryDeliveryError,
                                 'message refused: 451 4.3.0 try again')
        self.assertEqual(error.code, 451)

    def test_data_554_is_permanent(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        self.layer.server.fail_data(554, '5.6.0 content rejected')
        self.assertFails(PermanentDeliveryError, 'message refused: 554')

    def test_sender_550_is_permanent(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        self.layer.server.fail_mail(550, '5.7.1 sender rejected')
        self.assertFails(PermanentDeliveryError,
                         'sender alice@example.com refused: 550')

    def test_sender_421_is_temporary(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.layer.server.fail_mail(421, '4.3.2 shutting down')
        self.assertFails(TemporaryDeliveryError, '421')

    def test_drops_are_temporary(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        for point in ('connect', 'ehlo', 'mail', 'rcpt', 'data', 'dot'):
            with self.subTest(point=point):
                self.layer.server.drop_at = point
                self.assertFails(TemporaryDeliveryError, '127.0.0.1')
        self.assertEqual(self.layer.server.messages, [])

    def test_unreachable_relay_is_temporary(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        mailer = self._getTargetClass()('127.0.0.1', closed_port())
        with self.assertRaisesRegex(TemporaryDeliveryError,
                                    'connecting to 127.0.0.1:.*refused'):
            self._send(mailer)

    def test_silent_relay_times_out(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.layer.server.stall = True
        self.assertFails(TemporaryDeliveryError, 'timed out after 0.5 s',
                         timeout=0.5)

    def test_slow_relay_within_timeout_works(self):
        self.layer.server.delay = 0.02
        self._send(self._makeOne(timeout=2))
        self.assertEqual(len(self.layer.server.messages), 1)

    def test_too_slow_relay_times_out(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.layer.server.delay = 0.5
        self.assertFails(TemporaryDeliveryError, 'timed out', timeout=0.2)

    def test_force_tls_without_starttls(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self.assertFails(MailerConfigurationError,
                         r'TLS is required \(force_tls\) but the relay'
                         r' 127.0.0.1:\d+ does not offer STARTTLS',
                         force_tls=True)

    def test_auth_not_offered(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self.assertFails(MailerConfigurationError, 'does not offer AUTH',
                         username='user', password='pw')

    def test_implicit_tls_against_a_plain_port(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.interfaces import TemporaryDeliveryError
        with self.assertRaises((MailerConfigurationError,
                                TemporaryDeliveryError)):
            self._send(self._makeOne(implicit_tls=True, timeout=2))

    def test_unexpected_errors_are_not_disguised(self):
        from zope.sendmail.smtp.classify import classify_error
        error = KeyError('bug')
        self.assertIs(classify_error(error, 'sending', None), error)
