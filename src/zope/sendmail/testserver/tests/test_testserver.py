"""Tests for the SMTP test server and its layers, driven by plain smtplib."""
import smtplib
import socket
import time

from zope.sendmail.testserver import DROP_POINTS
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.server import MESSAGE
from zope.sendmail.tests.support.server import ServerTestCase


class PlainServerTests(ServerTestCase):

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
