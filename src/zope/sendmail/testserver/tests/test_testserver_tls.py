"""Tests of the test SMTP server: TLS, custom layers, standalone use."""
import os
import smtplib
import socket
import ssl
import threading
import unittest
from unittest import mock

from zope.sendmail.tests.support.server import MESSAGE
from zope.sendmail.tests.support.server import ServerTestCase
from zope.sendmail.tests.support.server import unverified_context
from zope.sendmail.testserver import SMTPTestServer
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import TLSSMTPServerLayer
from zope.sendmail.testserver import certs as testcerts
from zope.sendmail.testserver import make_layer


class TLSLayerTests(ServerTestCase):

    layer = TLSSMTPServerLayer

    def test_starttls_verified_and_auth(self):
        with self.connect() as smtp:
            smtp.ehlo()
            self.assertFalse(smtp.has_extn('auth'))
            smtp.starttls(context=self.server.client_context())
            smtp.login(TEST_USER, TEST_PASSWORD)
            self.send(smtp)
        [msg] = self.server.wait_for(1)
        self.assertTrue(msg.tls)
        self.assertEqual(msg.auth_user, TEST_USER)

    def test_auth_login_mechanism(self):
        with self.connect() as smtp:
            smtp.starttls(context=self.server.client_context())
            smtp.ehlo()
            smtp.user, smtp.password = TEST_USER, TEST_PASSWORD
            self.assertEqual(smtp.auth('LOGIN', smtp.auth_login)[0], 235)

    def test_auth_is_required(self):
        with self.connect() as smtp:
            smtp.starttls(context=self.server.client_context())
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                self.send(smtp)
        self.assertEqual(cm.exception.smtp_code, 530)

    def test_wrong_password_and_reject_auth(self):
        for password, reject in [('wrong', False), (TEST_PASSWORD, True)]:
            with self.subTest(password=password, reject_auth=reject):
                self.server.reject_auth = reject
                with self.connect() as smtp:
                    smtp.starttls(context=self.server.client_context())
                    with self.assertRaises(
                            smtplib.SMTPAuthenticationError) as cm:
                        smtp.login(TEST_USER, password)
                self.assertEqual(cm.exception.smtp_code, 535)


ImplicitTLSLayer = make_layer('ImplicitTLSLayer', implicit_tls=True,
                              auth=('implicit', 'secret'))


class CustomLayerTests(ServerTestCase):

    layer = ImplicitTLSLayer

    def test_layer(self):
        self.assertEqual(ImplicitTLSLayer.__module__, __name__)
        self.assertEqual(ImplicitTLSLayer.__bases__, (object,))
        self.assertTrue(self.server.implicit_tls)

    def test_implicit_tls_with_auth(self):
        with smtplib.SMTP_SSL(self.server.host, self.server.port, timeout=5,
                              context=self.server.client_context()) as smtp:
            smtp.login('implicit', 'secret')
            self.send(smtp)
        [msg] = self.server.wait_for(1)
        self.assertEqual((msg.tls, msg.auth_user), (True, 'implicit'))
        self.server.wait_until_idle()


class StandaloneServerTests(unittest.TestCase):

    def test_wrong_certificate(self):
        for kind in ('hostname', 'self-signed', 'expired'):
            for mode in ('starttls', 'implicit_tls'):
                with self.subTest(kind=kind, mode=mode), SMTPTestServer(
                        wrong_certificate=kind, **{mode: True}) as server:
                    self._check_wrong_certificate(server, mode)

    def _check_wrong_certificate(self, server, mode):
        def send(context):
            if mode == 'starttls':
                smtp = smtplib.SMTP(server.host, server.port, timeout=5)
                self.addCleanup(smtp.close)
                smtp.starttls(context=context)
            else:
                smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=5,
                                        context=context)
                self.addCleanup(smtp.close)
            smtp.sendmail('a@example.com', ['b@example.com'], MESSAGE)
            smtp.quit()

        with self.assertRaises(ssl.SSLCertVerificationError):
            send(server.client_context())
        send(unverified_context())
        self.assertTrue(server.wait_for(1)[0].tls)
        server.wait_until_idle()

    def test_auth_without_tls(self):
        with SMTPTestServer(starttls=True, auth={'u': 'p'},
                            auth_require_tls=False) as server:
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                smtp.login('u', 'p')
                smtp.sendmail('a@example.com', ['b@example.com'], MESSAGE)
            [msg] = server.wait_for(1)
            self.assertEqual((msg.tls, msg.auth_user), (False, 'u'))

    def test_no_auth_is_not_advertised_after_starttls(self):
        with SMTPTestServer(starttls=True) as server:
            with smtplib.SMTP(server.host, server.port, timeout=5) as smtp:
                smtp.starttls(context=server.client_context())
                smtp.ehlo()
                self.assertFalse(smtp.has_extn('auth'))
                smtp.sendmail('a@example.com', ['b@example.com'], MESSAGE)
            self.assertTrue(server.wait_for(1)[0].tls)

    def test_start_stop(self):
        threads = threading.active_count()
        server = SMTPTestServer(starttls=True)
        with self.assertRaises(RuntimeError):
            server.client_context()
        server.start()
        self.assertEqual(server.host, '127.0.0.1')
        self.assertEqual(threading.active_count(), threads + 1)
        with self.assertRaises(RuntimeError):
            server.start()
        ca_file, port = server.ca_file, server.port
        self.assertTrue(os.path.exists(ca_file))
        # Leave a stalled and an idle connection open: stop() copes.
        idle = smtplib.SMTP(server.host, port, timeout=5)
        self.addCleanup(idle.close)
        server.stall = True
        stalled = socket.create_connection((server.host, port), timeout=5)
        self.addCleanup(stalled.close)
        server.stop()
        server.stop()
        self.assertFalse(os.path.exists(os.path.dirname(ca_file)))
        self.assertEqual(threading.active_count(), threads)
        with self.assertRaises(OSError):
            socket.create_connection((server.host, port), timeout=5).close()

    def test_start_failure_is_reraised_and_cleaned_up(self):
        threads = threading.active_count()
        server = SMTPTestServer()
        # The controller's ready check failing, as with an unresponsive
        # server.
        with mock.patch('zope.sendmail.testserver._Controller.'
                        '_trigger_server', side_effect=RuntimeError('boom')):
            with self.assertRaisesRegex(RuntimeError, 'boom'):
                server.start()
        self.assertIsNone(server.ca_file)
        self.assertEqual(threading.active_count(), threads)
        with server:  # and it can still be started afterwards
            self.assertEqual(server.open_connections, 0)

    def test_invalid_options(self):
        with self.assertRaises(ValueError):
            SMTPTestServer(starttls=True, implicit_tls=True)
        with self.assertRaises(ValueError):
            SMTPTestServer(wrong_certificate='bogus')
        with self.assertRaises(TypeError):
            make_layer('Bad', bogus=True)
        with self.assertRaises(ValueError):
            testcerts.pem('bogus')

    def test_layer_lifecycle(self):
        layer = make_layer('LifecycleLayer', starttls=True)
        layer.setUp()
        try:
            server = layer.server
            server.delay = 1
            layer.testSetUp()
            self.assertEqual(server.delay, 0)
            layer.testTearDown()
        finally:
            layer.tearDown()
        self.assertIsNone(layer.server)
        self.assertIsNone(server.ca_file)
        layer.tearDown()  # idempotent
