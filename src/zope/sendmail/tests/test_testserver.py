"""Tests for the SMTP test server and its layers, driven by plain smtplib."""
import os
import smtplib
import socket
import ssl
import threading
import time
import unittest
from unittest import mock

from zope.sendmail.testserver import certs as testcerts
from zope.sendmail.testserver import DROP_POINTS
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import SMTPTestServer
from zope.sendmail.testserver import TLSSMTPServerLayer
from zope.sendmail.testserver import make_layer


MESSAGE = (b'From: sender@example.com\r\nTo: rcpt@example.com\r\n'
           b'Subject: test\r\n\r\nHello,\r\n.leading dot\r\nbye\r\n')


def unverified_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _ServerTestCase(unittest.TestCase):

    @property
    def server(self):
        return self.layer.server

    def connect(self, **kw):
        smtp = smtplib.SMTP(self.server.host, self.server.port, timeout=5,
                            **kw)
        self.addCleanup(smtp.close)
        return smtp

    def send(self, smtp, to=('rcpt@example.com',), msg=MESSAGE):
        return smtp.sendmail('sender@example.com', list(to), msg)


class PlainServerTests(_ServerTestCase):

    layer = SMTPServerLayer

    def test_records_envelope_and_exact_data(self):
        with self.connect() as smtp:
            self.assertEqual(self.send(smtp, to=['a@example.com',
                                                 'b@example.org']), {})
        [msg] = self.server.wait_for(1)
        self.assertEqual(msg.mail_from, 'sender@example.com')
        self.assertEqual(msg.rcpt_tos, ['a@example.com', 'b@example.org'])
        # smtplib dot-stuffed the leading dot; the record is unstuffed.
        self.assertEqual(msg.data, MESSAGE)
        self.assertEqual(msg.peer[0], '127.0.0.1')
        self.assertFalse(msg.tls)
        self.assertIsNone(msg.auth_user)
        self.assertIn('SIZE=%d' % len(MESSAGE), msg.mail_options)

    def test_bare_lf_is_recorded_as_received(self):
        sock = socket.create_connection((self.server.host, self.server.port),
                                        timeout=5)
        self.addCleanup(sock.close)
        reader = sock.makefile('rb')
        self.addCleanup(reader.close)

        def reply(command=None):
            if command:
                sock.sendall(command)
            line = reader.readline()
            while line[3:4] == b'-':
                line = reader.readline()
            return line[:3]

        self.assertEqual(reply(), b'220')
        for command, code in [(b'EHLO raw\r\n', b'250'),
                              (b'MAIL FROM:<raw@example.com>\r\n', b'250'),
                              (b'RCPT TO:<to@example.com>\r\n', b'250'),
                              (b'DATA\r\n', b'354'),
                              (b'bare\nlf\r\ncrlf\r\n.\r\n', b'250'),
                              (b'QUIT\r\n', b'221')]:
            self.assertEqual(reply(command), code, command)
        [msg] = self.server.wait_for(1)
        self.assertEqual(msg.data, b'bare\nlf\r\ncrlf\r\n')

    def test_connection_counting(self):
        smtp = self.connect()
        self.assertEqual(self.server.open_connections, 1)
        self.send(smtp)
        self.send(smtp)
        smtp.quit()
        with self.connect() as smtp:
            self.send(smtp)
        self.server.wait_until_idle()
        self.assertEqual(self.server.open_connections, 0)
        self.assertEqual(self.server.connections, 2)
        first, second, third = self.server.wait_for(3)
        self.assertEqual(first.connection, second.connection)
        self.assertNotEqual(first.connection, third.connection)

    def test_some_recipients_refused(self):
        self.server.refuse('Nobody@example.com', 550, '5.1.1 no such user')
        with self.connect() as smtp:
            refused = self.send(smtp, to=['ok@example.com',
                                          'nobody@example.com',
                                          'tempfail-1@example.com',
                                          'reject.me@example.com'])
        self.assertEqual(refused, {
            'nobody@example.com': (550, b'5.1.1 no such user'),
            'tempfail-1@example.com': (
                451, b'4.3.0 tempfail@ test address: try again later'),
            'reject.me@example.com': (
                550, b'5.1.1 reject@ test address: no such user'),
        })
        [msg] = self.server.wait_for(1)
        self.assertEqual(msg.rcpt_tos, ['ok@example.com'])

    def test_all_recipients_refused(self):
        self.server.refuse('x@example.com', 451, '4.3.0 try again later')
        with self.connect() as smtp:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                self.send(smtp, to=['x@example.com', 'reject@example.com'])
        self.assertEqual(cm.exception.recipients['x@example.com'][0], 451)
        self.assertEqual(cm.exception.recipients['reject@example.com'][0],
                         550)
        self.assertEqual(self.server.messages, [])

    def test_local_part_rules_can_be_disabled(self):
        self.server.local_part_rules = False
        with self.connect() as smtp:
            self.assertEqual(self.send(smtp, to=['reject@example.com']), {})

    def test_fail_data_and_mail(self):
        for method, code, error in [
                (self.server.fail_data, 451, smtplib.SMTPDataError),
                (self.server.fail_data, 554, smtplib.SMTPDataError),
                (self.server.fail_mail, 550, smtplib.SMTPSenderRefused),
                (self.server.fail_mail, 421, smtplib.SMTPSenderRefused)]:
            with self.subTest(method=method.__name__, code=code):
                self.server.reset()
                method(code, 'x.y.z failed')
                with self.connect() as smtp:
                    with self.assertRaises(error) as cm:
                        self.send(smtp)
                self.assertEqual(cm.exception.smtp_code, code)
                self.assertEqual(self.server.messages, [])
        with self.assertRaises(ValueError):
            self.server.fail_data(250, 'not a failure')

    def test_drop_at_each_point(self):
        steps = {
            'connect': lambda: self.connect(),
            'ehlo': lambda: self.connect().ehlo(),
            'rset': lambda: self.connect().rset(),
            'quit': lambda: self.connect().quit(),
        }
        for point in DROP_POINTS:
            with self.subTest(point=point):
                self.server.reset()
                self.server.drop_at = point
                step = steps.get(point, lambda: self.send(self.connect()))
                with self.assertRaises(smtplib.SMTPServerDisconnected):
                    step()
                self.server.wait_until_idle()
                self.assertEqual(self.server.messages, [])
        with self.assertRaises(ValueError):
            self.server.drop_at = 'DATA'

    def test_drop_once(self):
        self.server.drop_at = 'dot'
        self.server.drop_once = True
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            self.send(self.connect())
        with self.connect() as smtp:
            self.send(smtp)
        self.assertEqual(len(self.server.wait_for(1)), 1)
        self.assertIsNone(self.server.drop_at)
        self.assertEqual(self.server.connections, 2)

    def test_delay(self):
        self.server.delay = 0.05
        start = time.monotonic()
        with self.connect() as smtp:  # greeting
            self.send(smtp)  # EHLO, MAIL, RCPT, DATA, end of DATA
        self.assertGreaterEqual(time.monotonic() - start, 5 * 0.05)

    def test_stall(self):
        self.server.stall = True
        start = time.monotonic()
        with self.assertRaises(smtplib.SMTPServerDisconnected) as cm:
            smtplib.SMTP(self.server.host, self.server.port, timeout=0.5)
        self.assertIn('timed out', str(cm.exception))
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.server.wait_until_idle()
        self.server.stall = False
        with self.connect(), self.connect():
            self.assertEqual(self.server.open_connections, 2)

    def test_reset(self):
        with self.connect() as smtp:
            self.send(smtp)
        self.server.refuse('a@example.com')
        self.server.fail_mail()
        self.server.fail_data()
        self.server.drop_at, self.server.drop_once = 'rcpt', True
        self.server.delay = self.server.stall = self.server.reject_auth = 1
        self.server.local_part_rules = False
        self.server.reset()
        self.assertEqual((self.server.messages, self.server.connections),
                         ([], 0))
        self.assertEqual(
            (self.server.drop_at, self.server.drop_once, self.server.delay,
             self.server.stall, self.server.reject_auth,
             self.server.local_part_rules),
            (None, False, 0, False, False, True))
        with self.connect() as smtp:
            self.assertEqual(self.send(smtp, to=['a@example.com']), {})

    def test_bounded_waits(self):
        with self.assertRaisesRegex(AssertionError, 'at least 1 message'):
            self.server.wait_for(1, timeout=0.05)
        smtp = self.connect()
        with self.assertRaisesRegex(AssertionError, '1 connection'):
            self.server.wait_until_idle(timeout=0.05)
        smtp.quit()
        self.server.wait_until_idle()


class TLSLayerTests(_ServerTestCase):

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


class CustomLayerTests(_ServerTestCase):

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
