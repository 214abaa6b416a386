"""Tests of the OAuth 2.0 token providers and their sources, one at a time.
"""
import base64
import json
import os
import shutil
import sys
import tempfile
import unittest


def jwt(exp):
    """An unsigned JWT-shaped token with the claim ``exp``."""
    def part(obj):
        return base64.urlsafe_b64encode(
            json.dumps(obj).encode()).rstrip(b'=').decode()
    return f'{part({"alg": "none"})}.{part({"exp": exp})}.sig'


class Source:
    """A token source returning its ``values`` one after the other."""

    name = 'callable tests.Source'

    def __init__(self, *values):
        self.values = list(values)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.values.pop(0)


class TokenProviderTests(unittest.TestCase):

    def _makeOne(self, source, now=1000.0):
        from zope.sendmail.smtp.oauth2 import TokenProvider
        self.now = now
        return TokenProvider(source, clock=lambda: self.now)

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IOAuth2TokenProvider
        from zope.sendmail.interfaces import IOAuth2TokenSource
        from zope.sendmail.smtp.oauth2 import CallableSource
        from zope.sendmail.smtp.oauth2 import CommandSource
        verifyObject(IOAuth2TokenProvider, self._makeOne(Source()))
        verifyObject(IOAuth2TokenSource, CallableSource(Source()))
        verifyObject(IOAuth2TokenSource, CommandSource('true'))

    def test_cached_until_refused(self):
        source = Source('one', 'two')
        provider = self._makeOne(source)
        self.assertEqual(provider.token(), ('one', True))
        self.assertEqual(provider.token(), ('one', False))
        provider.refused('one')
        self.assertEqual(provider.token(), ('two', True))
        provider.refused('one')  # an old one: the cache stays
        self.assertEqual(provider.token(), ('two', False))
        self.assertEqual(source.calls, 2)

    def test_cached_until_it_expires(self):
        source = Source({'access_token': 'one', 'expires_in': 3600},
                        {'access_token': 'two', 'expires_at': 99999})
        provider = self._makeOne(source)
        self.assertEqual(provider.token(), ('one', True))
        self.now += 3600 - 61
        self.assertEqual(provider.token(), ('one', False))
        self.now += 2  # within the margin of 60 s before it expires
        self.assertEqual(provider.token(), ('two', True))

    def test_expiry_of_a_jwt(self):
        source = Source(jwt(2000), jwt(5000))
        provider = self._makeOne(source)
        self.assertEqual(provider.token(), (jwt(2000), True))
        self.now = 1939
        self.assertEqual(provider.token()[1], False)
        self.now = 1941
        self.assertEqual(provider.token(), (jwt(5000), True))

    def test_not_a_token(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        secret = 'almost a token'
        for value, reason in (
                ('', 'returned no bearer token (0 characters)'),
                (secret, 'returned no bearer token (14 characters)'),
                (None, 'returned a NoneType, not a token'),
                ({'error': 'invalid_grant', 'error_description': 'AADSTS'},
                 'returned no access_token: AADSTS')):
            with self.assertRaises(MailerConfigurationError) as cm:
                self._makeOne(Source(value)).token()
            self.assertEqual(str(cm.exception),
                             f'the OAuth 2.0 token callable tests.Source'
                             f' {reason}')
            self.assertNotIn(secret, str(cm.exception))

    def test_repr_names_the_source_never_the_token(self):
        provider = self._makeOne(Source('s3cret'))
        provider.token()
        self.assertEqual(repr(provider),
                         '<TokenProvider callable tests.Source>')


class CallableSourceTests(unittest.TestCase):

    def _makeOne(self, source):
        from zope.sendmail.smtp.oauth2 import CallableSource
        return CallableSource(source)

    def test_object(self):
        source = self._makeOne(os.getcwd)
        self.assertEqual(source(), os.getcwd())
        self.assertEqual(source.name, 'callable posix.getcwd')

    def test_dotted_name(self):
        self.assertEqual(self._makeOne('os.getcwd')(), os.getcwd())
        self.assertEqual(self._makeOne('os:getcwd').name,
                         'callable os:getcwd')

    def test_bad_dotted_names(self):
        with self.assertRaisesRegex(ValueError, "cannot import 'os.nope'"):
            self._makeOne('os.nope')
        with self.assertRaisesRegex(ValueError, "'os.sep' is not callable"):
            self._makeOne('os.sep')

    def test_a_failing_callable_is_a_configuration_error(self):
        from zope.sendmail.interfaces import MailerConfigurationError

        def broken():
            raise KeyError('no refresh token')
        with self.assertRaises(MailerConfigurationError) as cm:
            self._makeOne(broken)()
        self.assertIn("failed: KeyError: 'no refresh token'",
                      str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, KeyError)


class CommandSourceTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def _script(self, text):
        path = os.path.join(self.tmp, 'token.py')
        with open(path, 'w') as f:
            f.write(text)
        return [sys.executable, path]

    def _makeOne(self, command, **kw):
        from zope.sendmail.smtp.oauth2 import CommandSource
        return CommandSource(command, **kw)

    def test_stdout_is_the_token(self):
        source = self._makeOne(self._script('print("tok-123")'))
        self.assertEqual(source(), 'tok-123')

    def test_a_command_line_is_split_without_a_shell(self):
        source = self._makeOne("printf '%s' 'a b;$HOME'")
        self.assertEqual(source.argv, ['printf', '%s', 'a b;$HOME'])
        self.assertEqual(source(), 'a b;$HOME')
        self.assertEqual(source.name, "command \"printf %s 'a b;$HOME'\"")

    def test_json_token_response(self):
        source = self._makeOne(self._script(
            'print(\'{"access_token": "t", "expires_in": 60}\')'))
        self.assertEqual(source(), {'access_token': 't', 'expires_in': 60})

    def test_failing_command(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        argv = self._script('import sys\nsys.stderr.write("refresh token'
                            ' expired\\nmore\\n")\nsys.exit(3)')
        with self.assertRaises(MailerConfigurationError) as cm:
            self._makeOne(argv)()
        self.assertEqual(
            str(cm.exception),
            f'the OAuth 2.0 token command {" ".join(argv)!r} failed with'
            f' exit status 3: refresh token expired')

    def test_missing_command(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    "'/nonexistent/tok' cannot run: No such"
                                    " file or directory"):
            self._makeOne('/nonexistent/tok')()

    def test_timeout(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        source = self._makeOne(self._script('import time; time.sleep(10)'),
                               timeout=0.2)
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'did not finish within 0.2 s'):
            source()

    def test_bad_command_lines(self):
        with self.assertRaisesRegex(ValueError, 'No closing quotation'):
            self._makeOne("tok 'unclosed")
        with self.assertRaisesRegex(ValueError, 'is empty'):
            self._makeOne('  ')


class MakeProviderTests(unittest.TestCase):

    def _callFUT(self, **kw):
        from zope.sendmail.smtp.oauth2 import make_provider
        return make_provider(**kw)

    def test_none(self):
        self.assertIsNone(self._callFUT(username='u', password='p'))

    def test_contradictions(self):
        for kw, reason in (
                (dict(oauth2_token=Source(), oauth2_token_command='x',
                      username='u'), 'give one'),
                (dict(oauth2_token=Source()), 'needs the username'),
                (dict(oauth2_token_command='x', username='u',
                      password='p'), 'a password and an OAuth 2.0 token')):
            with self.assertRaisesRegex(ValueError, reason):
                self._callFUT(**kw)
