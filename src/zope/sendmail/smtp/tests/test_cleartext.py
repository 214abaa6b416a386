"""Credentials never go in clear to a relay on another host.

The relay here is an SMTP test server in a network namespace of its own,
reached over a veth link from another namespace (`VethPair`): not a
loopback address, as a relay on another machine.  It offers AUTH without
STARTTLS, as a misconfigured relay or someone in the path would.  (A relay
on loopback: test_mailer_hostile.LoopbackCredentialTests.)
"""
import os
import shutil
import sys
import tempfile
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler


USER, PASSWORD, TOKEN = 'jane', 'secret', 'ya29.token'


class RemoteRelayLayer:
    """Two relays on the relay side of a `VethPair`: ``plain`` (AUTH and
    XOAUTH2 without STARTTLS) and ``tls`` (AUTH after STARTTLS).  Where
    namespaces cannot be made, ``unavailable`` says why and the tests
    skip themselves."""

    pair = plain = tls = None
    unavailable = 'the layer is not set up'

    @classmethod
    def setUp(cls):
        from zope.sendmail.testserver import SMTPTestServer
        from zope.sendmail.testserver.netns import NetworkUnavailable
        from zope.sendmail.testserver.netns import VethPair
        try:
            cls.pair = VethPair().start()
        except NetworkUnavailable as e:
            cls.unavailable = f'no relay on another host: {e}'
            print(f'\n  {cls.__name__}: its tests are skipped:'
                  f' {cls.unavailable}', file=sys.stderr)
            return
        try:
            for name, options in [
                    ('plain', {'auth': {USER: PASSWORD},
                               'oauth2': {USER: TOKEN}}),
                    ('tls', {'starttls': True, 'auth': {USER: PASSWORD}})]:
                server = SMTPTestServer(**options)
                server.host = cls.pair.RELAY_IP
                cls.pair.in_relay(server.start)
                setattr(cls, name, server)
        except BaseException:
            cls.tearDown()
            raise
        cls.unavailable = None

    @classmethod
    def tearDown(cls):
        cls.unavailable = 'the layer is torn down'
        try:
            for name in ('plain', 'tls'):
                server = getattr(cls, name)
                setattr(cls, name, None)
                if server is not None:
                    server.stop()
        finally:
            pair, cls.pair = cls.pair, None
            if pair is not None:
                pair.stop()


class CleartextTests(unittest.TestCase):

    layer = RemoteRelayLayer

    def setUp(self):
        layer = self.layer
        if layer.unavailable is not None:
            self.skipTest(layer.unavailable)
        self.pair, self.plain, self.tls = layer.pair, layer.plain, layer.tls
        self.plain.reset()
        self.tls.reset()
        self.log = InstalledHandler('zope.sendmail')

    def tearDown(self):
        self.log.uninstall()

    def _mailer(self, server=None, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = server or self.plain
        kw.setdefault('username', USER)
        if 'oauth2_token' not in kw:
            kw.setdefault('password', PASSWORD)
        return SMTPMailer(server.host, server.port, timeout=5, **kw)

    def _send(self, mailer):
        return self.pair.in_client(lambda: mailer.send(
            'jane@example.com', ['bob@example.com'], b'Subject: x\r\n\r\n'))

    def _auth_lines(self, server):
        return [line for line in server.transcript()
                if line.upper().startswith('C: AUTH')]

    def test_the_password_is_refused_before_auth(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.plain
        with self.assertRaises(MailerConfigurationError) as caught:
            self._send(self._mailer())
        relay = f'{self.pair.RELAY_IP}:{server.port}'
        self.assertEqual(
            str(caught.exception),
            f"the relay {relay} does not offer STARTTLS, and the password of"
            f" 'jane' goes unencrypted only to a relay on this host: set"
            f" no_tls to send it in clear all the same (or implicit_tls,"
            f" for a relay speaking TLS from the first byte)")
        transcript = server.transcript()
        self.assertTrue(transcript[1].startswith('C: ehlo '), transcript)
        self.assertIn('S: 250-AUTH LOGIN PLAIN XOAUTH2', transcript)
        self.assertEqual(self._auth_lines(server), [])
        self.assertEqual(server.messages, [])
        self.assertNotIn(PASSWORD, ' '.join(transcript))

    def test_an_oauth2_token_likewise(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'and the OAuth 2.0 token of .jane.'):
            self._send(self._mailer(oauth2_token=lambda: TOKEN))
        self.assertEqual(self._auth_lines(self.plain), [])

    def test_no_tls_sends_it_in_clear(self):
        server = self.plain
        self.assertEqual(self._send(self._mailer(no_tls=True)), {})
        [message] = server.messages
        self.assertEqual(message.peer[0], self.pair.CLIENT_IP)
        self.assertFalse(message.tls)
        self.assertEqual(message.auth_user, USER)
        [line] = self._auth_lines(server)
        self.assertTrue(line.startswith('C: AUTH PLAIN '))

    def test_over_starttls_as_ever(self):
        server = self.tls
        self.assertEqual(self._send(self._mailer(server, tls_verify=False)),
                         {})
        [message] = server.messages
        self.assertTrue(message.tls)
        self.assertEqual(message.auth_user, USER)

    def test_without_credentials_mail_goes_in_clear(self):
        mailer = self._mailer(username=None, password=None)
        # This relay wants AUTH for MAIL: refused, but for that reason.
        from zope.sendmail.interfaces import PermanentDeliveryError
        with self.assertRaisesRegex(PermanentDeliveryError, '530'):
            self._send(mailer)

    def test_queued_mail_blames_no_message(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.stores.maildir.folder import Maildir
        from zope.sendmail.processing.processor import QueueProcessor
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        queue = os.path.join(tmp, 'queue')
        delivery = QueuedMailDelivery(queue, durable=False)
        for n in range(3):
            delivery.send('jane@example.com', ['bob@example.com'],
                          b'Subject: %d\n\nbody\n' % n)
        transaction.commit()
        events = []
        processor = QueueProcessor(self._mailer(), Maildir(queue),
                                   notify=events.append)
        result = self.pair.in_client(processor.process)
        self.assertIsInstance(result.error, MailerConfigurationError)
        self.assertEqual(events, [])
        self.assertEqual(len(os.listdir(os.path.join(queue, 'new'))), 3)
        self.assertEqual(os.listdir(os.path.join(queue, 'cur')), [])
        self.assertEqual(self._auth_lines(self.plain), [])
        self.assertIn('configuration problem, pass stopped',
                      ' '.join(r.getMessage() for r in self.log.records))
