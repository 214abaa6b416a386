"""Logging in by SASL XOAUTH2 against the test server: the AUTH exchange on
the wire, token refresh after a refusal, the configuration error after a
second, and no token or password in any log, repr or error."""
import base64
import logging
import os
import shutil
import sys
import tempfile
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import make_layer
from zope.sendmail.tests.support.xoauth2 import TOKEN
from zope.sendmail.tests.support.xoauth2 import USER
from zope.sendmail.tests.support.xoauth2 import XOAUTH2Layer


NEW_TOKEN = 'eyJ0eXAi.fresh-token.XyZ'
PASSWORD = 'pl41n-Passw0rd'
PasswordAndXOAUTH2Layer = make_layer(
    'PasswordAndXOAUTH2Layer', 'AUTH PLAIN LOGIN XOAUTH2.',
    auth={USER: PASSWORD}, oauth2={USER: TOKEN})


def initial_response(token, user=USER):
    return base64.b64encode(
        f'user={user}\x01auth=Bearer {token}\x01\x01'.encode()).decode()


def auth_lines(server, connection=None):
    return [line for line in server.transcript(connection)
            if 'AUTH' in line or line[3:6] in ('235', '334', '535')
            or line == 'C: ']


class Tokens:
    """A token callable handing out ``tokens`` in turn; counts calls."""

    def __init__(self, *tokens):
        self.tokens, self.calls = list(tokens), 0

    def __call__(self):
        self.calls += 1
        return self.tokens.pop(0)


class XOAUTH2TestBase(unittest.TestCase):

    layer = XOAUTH2Layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        # Everything at DEBUG: this package's loggers, aiosmtpd's
        # (mail.log), asyncio's; none may ever show a secret.
        self.records = []
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.records.append
        root = logging.getLogger()
        self.saved_level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)

    def tearDown(self):
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.saved_level)
        transaction.abort()
        shutil.rmtree(self.tmp)

    def mailer(self, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        kw.setdefault('username', USER)
        return SMTPMailer(server.host, server.port, timeout=5, **kw)

    def send(self, mailer):
        return mailer.send('shop@contoso.example', ['ann@example.com'],
                           b'Subject: x\r\n\r\nbody\r\n')

    def assertNoSecret(self, *texts):
        formatter = logging.Formatter()
        logged = [formatter.format(r) for r in self.records]
        # The server's AUTH lines were logged too (masked by aiosmtpd).
        self.assertIn('mail.log', {r.name for r in self.records})
        secrets = [TOKEN, NEW_TOKEN, PASSWORD, initial_response(TOKEN),
                   initial_response(NEW_TOKEN)]
        for text in logged + list(texts):
            for secret in secrets:
                self.assertNotIn(secret, text)


class LoginTests(XOAUTH2TestBase):

    def test_login_with_a_callable(self):
        tokens = Tokens(TOKEN)
        mailer = self.mailer(oauth2_token=tokens)
        self.send(mailer)
        self.send(mailer)
        server = self.layer.server
        self.assertEqual([m.auth_user for m in server.messages], [USER] * 2)
        self.assertEqual(auth_lines(server), [
            'S: 250-AUTH XOAUTH2',
            f'C: AUTH XOAUTH2 {initial_response(TOKEN)}',
            'S: 235 2.7.0 Authentication successful'] * 2)
        self.assertEqual(tokens.calls, 1)  # cached for the second
        self.assertNoSecret(repr(mailer), repr(mailer.token_provider))

    def test_login_with_a_command(self):
        counter = os.path.join(self.tmp, 'runs')
        script = os.path.join(self.tmp, 'token.py')
        with open(script, 'w') as f:
            f.write(f'open({counter!r}, "a").write("run\\n")\n'
                    f'print({TOKEN!r})\n')
        mailer = self.mailer(
            oauth2_token_command=f'{sys.executable} {script} --user {USER}')
        self.send(mailer)
        self.send(mailer)
        self.assertEqual(len(self.layer.server.messages), 2)
        with open(counter) as f:
            self.assertEqual(f.read(), 'run\n')
        self.assertNoSecret(repr(mailer.token_provider))

    def test_a_refused_cached_token_is_replaced_once(self):
        tokens = Tokens(TOKEN, NEW_TOKEN)
        mailer = self.mailer(oauth2_token=tokens)
        self.send(mailer)
        server = self.layer.server
        server.oauth2_tokens[USER] = NEW_TOKEN  # TOKEN expired meanwhile
        self.send(mailer)
        second = server.messages[1].connection
        self.assertEqual(auth_lines(server, second), [
            'S: 250-AUTH XOAUTH2',
            f'C: AUTH XOAUTH2 {initial_response(TOKEN)}',
            'S: 334 eyJzdGF0dXMiOiAiNDAxIiwgInNjaGVtZXMiOiAiYmVhcmVyIiwgInNj'
            'b3BlIjogImh0dHBzOi8vb3V0bG9vay5vZmZpY2UuY29tL1NNVFAuU2VuZCJ9',
            'C: ',
            'S: 535 5.7.3 Authentication unsuccessful',
            f'C: AUTH XOAUTH2 {initial_response(NEW_TOKEN)}',
            'S: 235 2.7.0 Authentication successful'])
        self.assertEqual(tokens.calls, 2)
        self.assertIn('refused the cached OAuth 2.0 token', '\n'.join(
            r.getMessage() for r in self.records))
        self.assertNoSecret()

    def test_a_refused_fresh_token_is_a_configuration_error(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        tokens = Tokens(TOKEN, 'eyJ.revoked.1', 'eyJ.revoked.2')
        mailer = self.mailer(oauth2_token=tokens)
        self.send(mailer)  # TOKEN cached
        server.oauth2_tokens[USER] = NEW_TOKEN
        with self.assertRaises(MailerConfigurationError) as cm:
            self.send(mailer)
        self.assertEqual(
            str(cm.exception),
            f"connecting to {server.host}:{server.port}: XOAUTH2"
            f" authentication as '{USER}' refused: 535 5.7.3 Authentication"
            f' unsuccessful ({{"status": "401", "schemes": "bearer",'
            f' "scope": "https://outlook.office.com/SMTP.Send"}})')
        self.assertEqual(cm.exception.code, 535)
        self.assertEqual(tokens.calls, 2)  # one fresh one, not more
        # The next connection starts over with a fresh token.
        with self.assertRaises(MailerConfigurationError):
            self.send(mailer)
        self.assertEqual(tokens.calls, 3)
        self.assertNoSecret(str(cm.exception), repr(cm.exception))
        self.assertNotIn('revoked', str(cm.exception))

    def test_processor_blames_no_message(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.stores.maildir.folder import Maildir
        from zope.sendmail.processing.processor import QueueProcessor
        queue = os.path.join(self.tmp, 'queue')
        QueuedMailDelivery(queue, durable=False).send(
            'shop@contoso.example', ['ann@example.com'], b'Subject: x\n\ny\n')
        transaction.commit()
        mailer = self.mailer(oauth2_token=Tokens('eyJ.revoked.1'))
        result = QueueProcessor(mailer, Maildir(queue)).process()
        self.assertIsInstance(result.error, MailerConfigurationError)
        self.assertEqual(dict(result.counts), {})
        self.assertEqual(len(os.listdir(os.path.join(queue, 'new'))), 1)
        self.assertNoSecret(str(result.error))


class RelayTests(XOAUTH2TestBase):

    layer = SMTPServerLayer

    def test_relay_without_xoauth2(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        tokens = Tokens(TOKEN)
        with self.assertRaises(MailerConfigurationError) as cm:
            self.send(self.mailer(oauth2_token=tokens))
        server = self.layer.server
        self.assertEqual(
            str(cm.exception),
            f'an OAuth 2.0 token is set but the relay {server.host}:'
            f'{server.port} does not offer AUTH XOAUTH2 (it offers: no AUTH'
            f' on an unencrypted connection)')
        self.assertEqual(tokens.calls, 0)
        self.assertEqual(server.messages, [])


class BothMechanismsTests(XOAUTH2TestBase):

    layer = PasswordAndXOAUTH2Layer

    def test_password_logins_keep_working_and_show_no_secret(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self.send(self.mailer(password=PASSWORD))
        with self.assertRaises(MailerConfigurationError) as cm:
            self.send(self.mailer(password=PASSWORD + 'x'))
        self.send(self.mailer(oauth2_token=Tokens(TOKEN)))
        server = self.layer.server
        self.assertEqual([m.auth_user for m in server.messages], [USER] * 2)
        self.assertIn('S: 250-AUTH LOGIN PLAIN XOAUTH2', server.transcript())
        self.assertNoSecret(str(cm.exception))
