"""SMTPMailer, deliveries and the queue processor against hostile relays:
endless replies, a trickled greeting, STARTTLS refused, and credentials
(UTF-8, never in clear to another host; see test_cleartext for that)."""
import smtplib
import time

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support.mailer import MailerTestBase
from zope.sendmail.tests.support.processor import ProcessorTestBase
from zope.sendmail.tests.support.utf8auth import PASSWORD
from zope.sendmail.tests.support.utf8auth import UTF8AuthLayer
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import TLSSMTPServerLayer
from zope.sendmail.testserver import make_layer


StartTLSLayer = make_layer('StartTLSLayer', starttls=True)


def auth_lines(server):
    return [line for line in server.transcript()
            if line.upper().startswith('C: AUTH')]


class EndlessReplyTests(MailerTestBase):

    layer = SMTPServerLayer

    def test_each_point_is_a_temporary_failure_naming_the_bound(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        server = self.layer.server
        relay = f'{server.host}:{server.port}'
        for point, where, what in [
                ('greeting', 'connecting to', 'the greeting'),
                ('EHLO', 'connecting to', 'the reply to EHLO'),
                ('MAIL', 'sending via', 'the reply to MAIL'),
                ('RCPT', 'sending via', 'the reply to RCPT'),
                ('dot', 'sending via', 'the reply to end of DATA')]:
            with self.subTest(point=point):
                server.reset()
                server.endless_reply = point
                start = time.monotonic()
                with self.assertRaises(TemporaryDeliveryError) as caught:
                    self._send(self._makeOne())
                self.assertEqual(
                    str(caught.exception),
                    f'{where} {relay}: {what} of the relay {relay} had'
                    f' more than 100 lines')
                self.assertLess(time.monotonic() - start, 5)
                server.wait_until_idle()
                # At the end of DATA, the relay had the message, but
                # never said so: a retry may duplicate it (as after a
                # timeout there).
                self.assertEqual(len(server.messages), point == 'dot')

    def test_a_reused_connection_is_replaced_after_one(self):
        server = self.layer.server
        mailer = self._makeOne()
        with mailer.connect() as connection:
            server.endless_reply = 'dot'
            with self.assertRaises(Exception):
                connection.send('alice@example.com', ['bob@example.com'],
                                b'Subject: one\r\n\r\n')
            server.endless_reply = None
            self.assertEqual(connection.send(
                'alice@example.com', ['bob@example.com'],
                b'Subject: two\r\n\r\n'), {})
        self.assertEqual(server.connections, 2)

    def test_a_factory_of_the_users_is_used_as_given(self):
        from zope.sendmail.smtp.client import BoundedSMTP
        used = []

        class RecordingSMTP(smtplib.SMTP):
            def __init__(self, *args, **kw):
                used.append(self)
                super().__init__(*args, **kw)

        mailer = self._makeOne()
        mailer.smtp = RecordingSMTP
        self._send(mailer, message=memoryview(b'Subject: v\r\n\r\nx\r\n'))
        [smtp] = used
        self.assertNotIsInstance(smtp, BoundedSMTP)
        self.assertEqual(self.layer.server.messages[0].data,
                         b'Subject: v\r\n\r\nx\r\n')
        mailer.smtp = smtplib.SMTP  # smtplib's own: bounded
        self._send(mailer)
        self.assertEqual(len(used), 1)


class TrickleTests(MailerTestBase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()

    def tearDown(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        clear_all()
        transaction.abort()

    def test_direct_delivery_does_not_hold_the_commit(self):
        # A greeting of a byte every 0.1 s: each read gets one within the
        # timeout of 0.2 s; the deadline of 0.6 s ends the wait, and the
        # vote aborts the transaction.
        from zope.sendmail.delivery import DirectMailDelivery
        from zope.sendmail.interfaces import TemporaryDeliveryError
        server = self.layer.server
        server.trickle = 10
        delivery = DirectMailDelivery(self._makeOne(timeout=0.2))
        delivery.send('alice@example.com', ['bob@example.com'],
                      b'Subject: x\r\n\r\n')
        start = time.monotonic()
        with self.assertRaisesRegex(
                TemporaryDeliveryError, 'the greeting of the relay .* was not'
                ' complete within 0.6 s'):
            transaction.commit()
        self.assertLess(time.monotonic() - start, 3)  # generous
        transaction.abort()
        server.trickle = None
        self.assertEqual(server.messages, [])


class ProcessorTests(ProcessorTestBase):

    def test_endless_ehlo_blames_no_message(self):
        server = self.layer.server
        self._queue(['bob@example.com'], ['carl@example.com'])
        server.endless_reply = 'EHLO'
        result = self._makeOne().process()
        self.assertIn('had more than 100 lines', str(result.error))
        self.assertEqual(len(self._messages('new')), 2)
        self.assertEqual(self._files('cur'), [])
        self.assertIn('relay unavailable, pass stopped',
                      self.log.records[0].getMessage())
        server.reset()
        self.assertEqual(self._makeOne().process().counts['sent'], 2)

    def test_queued_message_goes_out_as_written(self):
        # The processor sends a view of the queue file: what arrives is
        # the message, dot-stuffing undone by the relay.
        from zope.sendmail.delivery import QueuedMailDelivery
        server = self.layer.server
        body = b'.one\n..two\n.\nend'
        QueuedMailDelivery(self.queue, durable=False).send(
            'alice@example.com', ['bob@example.com'],
            b'Message-Id: <dots@example.com>\n\n' + body)
        transaction.commit()
        self.assertEqual(self._makeOne().process().counts['sent'], 1)
        [message] = server.messages
        self.assertEqual(message.data, b'Message-Id: <dots@example.com>'
                         b'\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n')
        self.assertEqual(self._events(),
                         [('MailSentEvent', 'dots@example.com', None)])
        self.assertIn('SIZE=%d' % (len(message.data) - 2),
                      message.mail_options)


class StartTLSRefusedTests(MailerTestBase):

    layer = TLSSMTPServerLayer

    def setUp(self):
        self.log = InstalledHandler('zope.sendmail')

    def tearDown(self):
        self.log.uninstall()

    def test_with_credentials_an_error_never_plaintext(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        server = self.layer.server
        server.refuse_starttls()
        with self.assertRaises(TemporaryDeliveryError) as caught:
            self._send(self._makeOne(username=TEST_USER,
                                     password=TEST_PASSWORD))
        self.assertEqual(
            str(caught.exception),
            f'the relay {server.host}:{server.port} offers STARTTLS but'
            f' refused it (454 4.7.0 TLS not available due to temporary'
            f' reason): the password of {TEST_USER!r} is not sent'
            f' unencrypted')
        self.assertEqual(auth_lines(server), [])
        server.wait_until_idle()

    def test_a_permanent_refusal_is_a_configuration_problem(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        server.refuse_starttls(502, '5.5.1 not here')
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'refused it \\(502 5.5.1 not here\\)'):
            self._send(self._makeOne(oauth2_token=lambda: 'token',
                                     username=TEST_USER))
        self.assertEqual(auth_lines(server), [])


class StartTLSRefusedWithoutCredentialsTests(MailerTestBase):

    layer = StartTLSLayer

    def setUp(self):
        self.log = InstalledHandler('zope.sendmail')

    def tearDown(self):
        self.log.uninstall()

    def test_a_warning_and_plaintext(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        server.refuse_starttls()
        self.assertEqual(self._send(self._makeOne()), {})
        self.assertFalse(server.messages[0].tls)
        self.assertEqual(
            [r.getMessage() for r in self.log.records
             if r.levelname == 'WARNING'],
            [f'{server.host}:{server.port} refused STARTTLS (454 4.7.0 TLS'
             f' not available due to temporary reason); sending'
             f' unencrypted'])
        with self.assertRaisesRegex(
                MailerConfigurationError, r'TLS is required \(force_tls\)'
                r' but the relay .* refused STARTTLS \(454'):
            self._send(self._makeOne(force_tls=True))


class LoopbackCredentialTests(MailerTestBase):

    layer = UTF8AuthLayer

    def test_plain_auth_to_a_loopback_relay_as_before(self):
        # No STARTTLS offered, but the relay is at 127.0.0.1: this host.
        server = self.layer.server
        self._send(self._makeOne(username='jörg', password=PASSWORD))
        [message] = server.messages
        self.assertFalse(message.tls)
        self.assertEqual(message.auth_user, 'jörg')
        self.assertEqual(len(auth_lines(server)), 1)

    def test_a_wrong_non_ascii_password(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        with self.assertRaises(MailerConfigurationError) as caught:
            self._send(self._makeOne(username='jörg', password='wröng€'))
        self.assertEqual(
            str(caught.exception),
            f"connecting to {server.host}:{server.port}: authentication as"
            f" 'jörg' refused: 535 5.7.8 Authentication credentials invalid")
        chain = caught.exception.__cause__
        self.assertNotIn('€', repr(chain) + str(chain.__context__))
