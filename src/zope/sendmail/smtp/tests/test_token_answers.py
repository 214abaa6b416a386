"""Malformed answers of OAuth 2.0 token sources are configuration errors:
a command's (real helper scripts) or a callable's, down to the exit
status 78 of the zope-sendmail program, with no traceback."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Mapping

import transaction

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.xoauth2 import USER
from zope.sendmail.tests.support.xoauth2 import XOAUTH2Layer


class _HelperScripts(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-token-')
        self.addCleanup(shutil.rmtree, self.tmp)

    def _printing(self, text):
        """A token command printing *text*, written to a file."""
        answer = os.path.join(self.tmp, 'answer')
        with open(answer, 'w') as f:
            f.write(text)
        script = os.path.join(self.tmp, 'token.py')
        with open(script, 'w') as f:
            f.write(f'import sys\nsys.stdout.write(open({answer!r}).read())')
        return [sys.executable, script]


class CommandAnswerTests(_HelperScripts):

    def _token(self, text):
        from zope.sendmail.smtp.oauth2 import CommandSource
        from zope.sendmail.smtp.oauth2 import TokenProvider
        return TokenProvider(CommandSource(self._printing(text)),
                             clock=lambda: 1000.0).token()

    def _error(self, text):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaises(MailerConfigurationError) as cm:
            self._token(text)
        message = str(cm.exception)
        self.assertTrue(message.startswith("the OAuth 2.0 token command '"),
                        message)
        self.assertNotIn('s3cret', message)
        return message.split("token.py' ", 1)[1]

    def test_malformed_expiries(self):
        for expiry, shown in (
                ('"soon"', "'soon'"), ('"NaN"', "'NaN'"), ('NaN', 'nan'),
                ('Infinity', 'inf'), ('-Infinity', '-inf'),
                ('1e400', 'inf'), ('true', 'True'), ('[60]', '[60]'),
                ('{"s": 60}', "{'s': 60}"), ('""', "''"),
                ('9' * 400, '9' * 60 + '...')):
            for key in ('expires_in', 'expires_at'):
                text = f'{{"access_token": "s3cret", "{key}": {expiry}}}'
                self.assertEqual(
                    self._error(text),
                    f'returned an {key} that is not a finite number of'
                    f' seconds: {shown}', text)

    def test_an_expiry_as_a_string_of_a_number(self):
        # As Azure AD's v1 endpoint sends it.
        self.assertEqual(self._token(json.dumps(
            {'access_token': 'tok', 'expires_in': '3599'})), ('tok', True))

    def test_deep_nesting(self):
        for text in ('[' * 60000, '{"a":' * 10000 + '1' + '}' * 10000):
            self.assertEqual(self._error(text), 'printed JSON nested too'
                                                ' deeply')

    def test_json_that_is_not_an_object(self):
        for text, kind in (('["s3cret"]', 'array'), ('"s3cret"', 'string'),
                           ('null', 'null'), ('true', 'boolean')):
            self.assertEqual(
                self._error(text),
                f'printed a JSON {kind}, not an object: print the token'
                f' alone, or an object with access_token')

    def test_invalid_json(self):
        self.assertEqual(self._error('{"access_token": "s3cret"'),
                         'printed invalid JSON')

    def test_more_than_64_kb(self):
        self.assertEqual(self._error('x' * (64 * 1024 + 1)),
                         'printed more than 64 KB on its standard output')
        self.assertEqual(self._token('x' * (64 * 1024)),
                         ('x' * (64 * 1024), True))

    def test_an_error_line_is_shown_quoted_when_not_printable(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.smtp.oauth2 import CommandSource
        script = os.path.join(self.tmp, 'fails.py')
        with open(script, 'w') as f:
            f.write('import sys\nsys.stderr.write("\\x1b]0;owned\\x07 no'
                    ' grant\\n")\nsys.exit(2)\n')
        with self.assertRaises(MailerConfigurationError) as cm:
            CommandSource([sys.executable, script])()
        self.assertTrue(str(cm.exception).endswith(
            "failed with exit status 2: '\\x1b]0;owned\\x07 no grant'"))


class CallableAnswerTests(unittest.TestCase):

    def _token(self, value):
        from zope.sendmail.smtp.oauth2 import CallableSource
        from zope.sendmail.smtp.oauth2 import TokenProvider
        return TokenProvider(CallableSource(lambda: value),
                             clock=lambda: 1000.0).token()

    def test_malformed_expiries(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        for expiry in ('soon', float('nan'), float('inf'), 10 ** 400, True,
                       None.__class__, [3600]):
            with self.assertRaisesRegex(MailerConfigurationError,
                                        'expires_in that is not a finite'):
                self._token({'access_token': 's3cret', 'expires_in': expiry})

    def test_any_mapping(self):

        class Response(Mapping):
            def __init__(self, **items):
                self.items_ = items

            def __getitem__(self, key):
                return self.items_[key]

            def __iter__(self):
                return iter(self.items_)

            def __len__(self):
                return len(self.items_)

        self.assertEqual(self._token(Response(access_token='tok',
                                              expires_in=60)),
                         ('tok', True))

        class Broken(Response):
            def __iter__(self):
                raise RuntimeError('a bug of its own')

        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(
                MailerConfigurationError,
                'returned a mapping that cannot be read: RuntimeError: a'
                ' bug of its own'):
            self._token(Broken(access_token='tok'))

    def test_a_jwt_with_a_strange_exp_has_no_expiry(self):
        import base64

        def part(text):
            return base64.urlsafe_b64encode(text.encode()).rstrip(
                b'=').decode()
        for claims in ('{"exp": 1e400}', '{"exp": "soon"}', '{"exp": true}',
                       '[' * 5000, '"claims"'):
            token = f'{part("{}")}.{part(claims)}.sig'
            self.assertEqual(self._token(token), (token, True))


class ProgramTests(_HelperScripts):
    """The zope-sendmail program, in a process of its own, against a relay
    offering XOAUTH2."""

    layer = XOAUTH2Layer

    def test_a_malformed_answer_exits_78_without_a_traceback(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)
        queue = os.path.join(self.tmp, 'queue')
        QueuedMailDelivery(queue).send(USER, ['ann@example.com'],
                                       b'Subject: s\n\nbody\n')
        transaction.commit()
        command = ' '.join(self._printing(
            '{"access_token": "s3cret", "expires_in": "soon"}'))
        server = self.layer.server
        done = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console',
             '--hostname', server.host, '--port', str(server.port),
             '--username', USER, '--oauth2-token-command', command, queue],
            env=child_env(), stdin=subprocess.DEVNULL, capture_output=True,
            timeout=60)
        stderr = done.stderr.decode()
        self.assertEqual(done.returncode, 78, stderr)
        self.assertIn('configuration problem, pass stopped: the OAuth 2.0'
                      ' token command', stderr)
        self.assertIn("returned an expires_in that is not a finite number"
                      " of seconds: 'soon'", stderr)
        self.assertNotIn('Traceback', stderr)
        self.assertNotIn('s3cret', stderr)
        self.assertEqual(len(os.listdir(os.path.join(queue, 'new'))), 1)
        self.assertEqual(server.messages, [])
