"""OAuth 2.0 access tokens, and logging in with them (SASL XOAUTH2).

This module owns the token providers of `SMTPMailer`'s ``oauth2_token``
(a callable, or its dotted name) and ``oauth2_token_command`` (a command
line, run without a shell, whose standard output is the token, as msmtp's
``passwordeval``), and `login`, the ``AUTH XOAUTH2`` exchange over
smtplib's ``SMTP.auth``.  A provider fetches a token when a connection
authenticates and caches it until it expires (60 s before, when the
expiry is known) or the relay refuses it; a refused cached token is
replaced by a fresh one once; a refused fresh one is a
`MailerConfigurationError` naming the user and the relay's reply.

What a source returns, and what it means, is `tokenresponse`'s
business; a command runs within the bounds of
`zope.sendmail.smtp.helperprocess`.  Tokens never appear in logs, reprs or
exceptions.
"""
import logging
import pkgutil
import shlex
import smtplib
import subprocess
import threading
import time

from zope.interface import implementer

from zope.sendmail.smtp.classify import reply_text
from zope.sendmail.smtp.helperprocess import OutputLimitExceeded
from zope.sendmail.smtp.helperprocess import run_helper
from zope.sendmail.interfaces import IOAuth2TokenProvider
from zope.sendmail.interfaces import IOAuth2TokenSource
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.smtp.tokenresponse import parse_token
from zope.sendmail.smtp.tokenresponse import read_printed
from zope.sendmail.smtp.tokenresponse import shown


log = logging.getLogger(__name__)

#: Seconds a token command may take.
COMMAND_TIMEOUT = 60
#: A token is fetched again this many seconds before it expires.
MARGIN = 60


def make_provider(oauth2_token=None, oauth2_token_command=None,
                  username=None, password=None):
    """The `TokenProvider` of an `SMTPMailer`'s settings, or None; a
    ValueError for settings that contradict each other."""
    if oauth2_token is None and not oauth2_token_command:
        return None
    if oauth2_token is not None and oauth2_token_command:
        raise ValueError('oauth2_token and oauth2_token_command: give one')
    if username is None:
        raise ValueError('an OAuth 2.0 token needs the username it is for')
    if password is not None:
        raise ValueError('a password and an OAuth 2.0 token: give one')
    if oauth2_token_command:
        return TokenProvider(CommandSource(oauth2_token_command))
    return TokenProvider(CallableSource(oauth2_token))


@implementer(IOAuth2TokenSource)
class CallableSource:
    """Calls a Python callable (or the one a dotted name names)."""

    def __init__(self, source):
        if isinstance(source, str):
            try:
                name, source = source, pkgutil.resolve_name(source.strip())
            except (ImportError, AttributeError, ValueError) as e:
                raise ValueError(f'oauth2_token: cannot import {source!r}:'
                                 f' {e}') from None
        else:
            name = getattr(source, '__qualname__', None) or repr(source)
            module = getattr(source, '__module__', None)
            name = f'{module}.{name}' if module else name
        if not callable(source):
            raise ValueError(f'oauth2_token: {name!r} is not callable')
        self.name, self.source = f'callable {name}', source

    def __call__(self):
        try:
            return self.source()
        except Exception as e:
            raise MailerConfigurationError(
                f'the OAuth 2.0 token {self.name} failed:'
                f' {type(e).__name__}: {shown(e)}') from e


@implementer(IOAuth2TokenSource)
class CommandSource:
    """Runs a command, without a shell; its standard output is the token.
    """

    def __init__(self, command, timeout=COMMAND_TIMEOUT):
        if isinstance(command, str):
            try:
                command = shlex.split(command)
            except ValueError as e:
                raise ValueError(f'oauth2_token_command: {e}') from None
        self.argv = [str(arg) for arg in command]
        if not self.argv:
            raise ValueError('oauth2_token_command is empty')
        self.timeout = timeout
        # Its arguments are in ps for anyone to see: they are no secret.
        self.name = f'command {shlex.join(self.argv)!r}'

    def __call__(self):
        what = f'the OAuth 2.0 token {self.name}'
        try:
            # Bounded: its output, its time, and whatever it leaves behind
            # holding its output (see zope.sendmail.smtp.helperprocess).
            done = run_helper(self.argv, self.timeout)
        except subprocess.TimeoutExpired:
            raise MailerConfigurationError(
                f'{what} did not finish within {self.timeout} s') from None
        except OutputLimitExceeded as e:
            raise MailerConfigurationError(f'{what} {e}') from None
        except OSError as e:
            raise MailerConfigurationError(
                f'{what} cannot run: {e.strerror or e}') from None
        if done.returncode != 0:
            lines = done.stderr.decode('utf-8', 'replace').strip()
            first = shown(lines.splitlines()[0]) if lines else \
                'no error output'
            raise MailerConfigurationError(
                f'{what} failed with exit status {done.returncode}: {first}')
        try:
            out = done.stdout.decode('utf-8').strip()
        except UnicodeDecodeError:
            raise MailerConfigurationError(
                f'{what} printed something that is not UTF-8') from None
        return read_printed(out, what)


@implementer(IOAuth2TokenProvider)
class TokenProvider:
    """Caches the tokens of *source* (a `CallableSource` or
    `CommandSource`); see `IOAuth2TokenProvider`.  Thread-safe: the
    connections of a processor share one."""

    def __init__(self, source, clock=time.time, margin=MARGIN):
        self.source = source
        self.clock = clock
        self.margin = margin
        self._lock = threading.Lock()
        self._token = self._expires_at = None

    def __repr__(self):
        return f'<{type(self).__name__} {self.source.name}>'

    def token(self):
        with self._lock:
            now = self.clock()
            if self._token is not None and (
                    self._expires_at is None
                    or now < self._expires_at - self.margin):
                return self._token, False
            self._token = None
            token, expires_at = parse_token(self.source(), self.source.name,
                                            now)
            self._token, self._expires_at = token, expires_at
            log.debug('fetched an OAuth 2.0 access token from the %s%s',
                      self.source.name, '' if expires_at is None else
                      f' (expires in {expires_at - now:.0f} s)')
            return token, True

    def refused(self, token):
        with self._lock:
            if self._token == token:
                self._token = None


def xoauth2_response(user, token):
    """The SASL XOAUTH2 initial client response (before base64)."""
    return f'user={user}\x01auth=Bearer {token}\x01\x01'


def login(smtp, user, provider, relay, encrypted=True):
    """Authenticate the greeted *smtp* connection to *relay* (``host:port``)
    by XOAUTH2 as *user* with a token of *provider*; *encrypted* says
    whether the connection is (relays offer AUTH only then)."""
    offered = smtp.esmtp_features.get('auth', '').upper().split() \
        if smtp.has_extn('auth') else []
    if 'XOAUTH2' not in offered:
        raise MailerConfigurationError(
            f'an OAuth 2.0 token is set but the relay {relay} does not offer'
            f' AUTH XOAUTH2 (it offers: {" ".join(offered) or "no AUTH"}'
            f'{"" if encrypted else " on an unencrypted connection"})')
    token, fresh = provider.token()
    while True:
        challenges = []

        def respond(challenge=None, token=token):
            if challenge is None:
                return xoauth2_response(user, token)
            # A refusal: the relay's JSON error, to be answered empty.
            challenges.append(challenge.decode('utf-8', 'replace'))
            return ''

        try:
            smtp.auth('XOAUTH2', respond, initial_response_ok=True)
            return
        except smtplib.SMTPAuthenticationError as e:
            provider.refused(token)
            said = f'{e.smtp_code} {reply_text(e.smtp_error)}' + ''.join(
                f' ({c})' for c in challenges)
            if fresh:
                raise MailerConfigurationError(
                    f'connecting to {relay}: XOAUTH2 authentication as'
                    f' {user!r} refused: {said}', code=e.smtp_code,
                    reply=e.smtp_error) from None
            log.info('%s refused the cached OAuth 2.0 token of %r (%s);'
                     ' trying a fresh one', relay, user, said)
        token, fresh = provider.token()
