"""The OAuth 2.0 settings wherever the mailer's settings are: the
`ISMTPMailer` fields, ``<mail:smtpMailer>``, the ``zope-sendmail`` options
and its INI file."""
from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.zcml import ZCMLTestBase


def get_token():
    """A token callable for the ZCML tests."""
    return 'zcml-token'


class FieldTests(ConsoleTestBase):

    def test_fields(self):
        from zope.schema import getFieldNamesInOrder

        from zope.sendmail.interfaces import ISMTPMailer
        names = getFieldNamesInOrder(ISMTPMailer)
        self.assertEqual(names[names.index('password'):][:3],
                         ['password', 'oauth2_token', 'oauth2_token_command'])


class ZCMLTests(ZCMLTestBase):

    def _mailer(self, attributes):
        from zope.component import getUtility

        from zope.sendmail.interfaces import IMailer
        self._load(f'<mail:smtpMailer name="m" {attributes} />')
        return getUtility(IMailer, 'm')

    def test_token_callable_by_dotted_name(self):
        mailer = self._mailer(
            f'username="shop@contoso.example"'
            f' oauth2_token="{__name__}.get_token"')
        self.assertIs(mailer.oauth2_token, get_token)
        self.assertEqual(mailer.token_provider.token(), ('zcml-token', True))

    def test_token_command(self):
        mailer = self._mailer('username="u" oauth2_token_command="echo t1"')
        self.assertEqual(mailer.token_provider.source.argv, ['echo', 't1'])
        self.assertEqual(mailer.token_provider.token(), ('t1', True))

    def test_errors(self):
        with self.assertRaisesRegex(ConfigurationError, 'ImportError'):
            self._mailer('username="u" oauth2_token="no.such.thing"')
        with self.assertRaisesRegex(ConfigurationError, 'give one'):
            self._mailer('username="u" password="p"'
                         ' oauth2_token_command="echo t"')
        with self.assertRaisesRegex(ConfigurationError,
                                    'needs the username'):
            self._mailer('oauth2_token_command="echo t"')


class ProgramTests(ConsoleTestBase):

    def _mailer(self, *args):
        from zope.sendmail.smtp.mailer import SMTPMailer
        return self._app(*args, self.queue, mailer=SMTPMailer).mailer

    def test_command_line(self):
        mailer = self._mailer('--username', 'u', '--oauth2-token-command',
                              "oama access 'shop@contoso.example'")
        self.assertEqual(mailer.token_provider.source.argv,
                         ['oama', 'access', 'shop@contoso.example'])
        mailer = self._mailer('--username', 'u', '--oauth2-token',
                              f'{__name__}:get_token')
        self.assertIs(mailer.token_provider.source.source, get_token)

    def test_ini(self):
        ini = self._ini('username = u\noauth2_token_command = echo t2\n')
        mailer = self._mailer('--config', ini)
        self.assertEqual(mailer.token_provider.token(), ('t2', True))
        ini = self._ini(f'username = u\noauth2_token = {__name__}.get_token')
        mailer = self._mailer('--config', ini)
        self.assertIs(mailer.token_provider.source.source, get_token)

    def test_a_password_and_a_token_contradict(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        ini = self._ini('username = u\npassword = p\n')
        error = self._error('--config', ini, '--oauth2-token-command', 'x',
                            self.queue, mailer=SMTPMailer)
        self.assertEqual(error, 'a password and an OAuth 2.0 token: give one')

    def test_errors(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        self.assertEqual(
            self._error('--oauth2-token-command', 'echo t', self.queue),
            'username and password go together: give both or neither (or a'
            ' username and an OAuth 2.0 token)')
        self.assertEqual(
            self._error('--username', 'u', '--oauth2-token', 'os.nope',
                        self.queue, mailer=SMTPMailer),
            "oauth2_token: cannot import 'os.nope': module 'os' has no"
            " attribute 'nope'")
