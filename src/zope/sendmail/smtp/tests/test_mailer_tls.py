"""Tests of SMTPMailer with TLS: STARTTLS, implicit TLS, certificates, AUTH."""
import smtplib

from zope.sendmail.tests.support.mailer import MailerTestBase
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import TLSSMTPServerLayer
from zope.sendmail.testserver import make_layer


ImplicitTLSLayer = make_layer('ImplicitTLSLayer', implicit_tls=True)
WrongCertificateLayer = make_layer('WrongCertificateLayer', starttls=True,
                                   wrong_certificate=True)


class STARTTLSTests(MailerTestBase):

    layer = TLSSMTPServerLayer

    def test_verified_starttls_and_auth(self):
        server = self.layer.server
        self._send(self._makeOne(tls_ca_file=server.ca_file,
                                 username=TEST_USER, password=TEST_PASSWORD,
                                 force_tls=True))
        [message] = server.messages
        self.assertTrue(message.tls)
        self.assertEqual(message.auth_user, TEST_USER)

    def test_ssl_context(self):
        server = self.layer.server
        self._send(self._makeOne(ssl_context=server.client_context(),
                                 username=TEST_USER, password=TEST_PASSWORD))
        self.assertTrue(server.messages[0].tls)

    def test_unknown_authority_fails_verification(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'certificate did not verify'):
            self._send(self._makeOne(username=TEST_USER,
                                     password=TEST_PASSWORD))
        self.assertEqual(self.layer.server.messages, [])

    def test_opt_out_of_verification(self):
        self._send(self._makeOne(tls_verify=False, username=TEST_USER,
                                 password=TEST_PASSWORD))
        self.assertTrue(self.layer.server.messages[0].tls)

    def test_wrong_password(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(
                MailerConfigurationError,
                "authentication as 'user' refused: 535") as caught:
            self._send(self._makeOne(tls_verify=False, username='user',
                                     password='wrong'))
        self.assertNotIn('wrong', str(caught.exception))

    def test_no_tls_hides_auth(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'does not offer AUTH on an unencrypted'):
            self._send(self._makeOne(no_tls=True, username=TEST_USER,
                                     password=TEST_PASSWORD))


class WrongCertificateTests(MailerTestBase):

    layer = WrongCertificateLayer

    def test_host_name_mismatch_fails(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        with self.assertRaisesRegex(
                MailerConfigurationError,
                'certificate did not verify: IP address mismatch'):
            self._send(self._makeOne(tls_ca_file=server.ca_file))

    def test_opt_out(self):
        self._send(self._makeOne(tls_verify=False))
        self.assertTrue(self.layer.server.messages[0].tls)


class ImplicitTLSTests(MailerTestBase):

    layer = ImplicitTLSLayer

    def test_verified(self):
        server = self.layer.server
        self._send(self._makeOne(implicit_tls=True,
                                 tls_ca_file=server.ca_file))
        self.assertTrue(server.messages[0].tls)

    def test_unknown_authority(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'certificate did not verify'):
            self._send(self._makeOne(implicit_tls=True))

    def test_custom_smtp_class_attribute_is_used(self):
        server = self.layer.server
        used = []

        class RecordingSMTP_SSL(smtplib.SMTP_SSL):
            def __init__(self, *args, **kw):
                used.append(kw.get('context'))
                super().__init__(*args, **kw)

        mailer = self._makeOne(implicit_tls=True, tls_verify=False)
        mailer.smtp = RecordingSMTP_SSL
        self._send(mailer)
        self.assertEqual(len(used), 1)
        self.assertEqual(len(server.messages), 1)
