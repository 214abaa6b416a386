"""What an OAuth 2.0 token source answered, and what it means.

This module owns the reading of a token source's answer (see
`zope.sendmail.smtp.oauth2`): the token as text; or a mapping shaped like an
OAuth 2.0 token response (RFC 6749, 5.1: ``access_token`` and
``expires_in`` seconds, as MSAL returns -- a number, or a string of one, as
some endpoints send it; or ``expires_at``, a POSIX time); a command may
print that mapping as a JSON object.  Without an expiry, the ``exp`` claim
of a JWT access token (Microsoft's are) is used, if it has one.  Anything
else -- a number that is not finite, JSON nested too deeply, JSON that is
not an object -- is a `MailerConfigurationError` saying what is wrong, in
which no character of the token appears: the source is misconfigured, no
message is to blame, and it is no bug to log with a traceback.
"""
import base64
import binascii
import json
import math
from collections.abc import Mapping

from zope.sendmail.interfaces import MailerConfigurationError


#: A command's output starting so, or being one of these, is JSON.
JSON_STARTS = ('{', '[', '"')
JSON_CONSTANTS = ('null', 'true', 'false')
JSON_TYPES = {list: 'array', str: 'string', bool: 'boolean',
              type(None): 'null'}


def read_printed(out, what):
    """The answer that *what* (``"the OAuth 2.0 token command '...'"``)
    printed, *out* (stripped text): a dict when it is JSON, else the text.
    """
    if not out.startswith(JSON_STARTS) and out not in JSON_CONSTANTS:
        return out
    try:
        value = json.loads(out)
    except RecursionError:
        raise MailerConfigurationError(
            f'{what} printed JSON nested too deeply') from None
    except ValueError:
        raise MailerConfigurationError(
            f'{what} printed invalid JSON') from None
    if not isinstance(value, dict):
        # jq without -r, say: refused rather than guessed at.
        kind = JSON_TYPES.get(type(value), 'number')
        raise MailerConfigurationError(
            f'{what} printed a JSON {kind}, not an object: print the token'
            f' alone, or an object with access_token')
    return value


def shown(text, limit=200):
    """*text* from a helper or a token endpoint, fit for a one-line
    message: cut at *limit* characters, and quoted when it holds a
    character that is not printable (a terminal escape, a line break)."""
    text = str(text)
    cut = text[:limit] + ('...' if len(text) > limit else '')
    return cut if cut.isprintable() else repr(cut)


def _finite(value):
    """*value* as a finite float, or None: a bool, a non-number, NaN, an
    infinity or a number too large for a float is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _jwt_expiry(token):
    """The ``exp`` claim of *token* if it is a JWT, else None.  Not
    verified: it only says when to fetch the next token."""
    parts = token.split('.')
    if len(parts) != 3:
        return None
    try:
        padding = '=' * (-len(parts[1]) % 4)
        payload = base64.urlsafe_b64decode(parts[1] + padding)
        exp = json.loads(payload).get('exp')
    except (binascii.Error, ValueError, AttributeError, RecursionError):
        return None  # not a JWT after all: its expiry is unknown
    return _finite(exp) if not isinstance(exp, str) else None


def _expiry(response, name, now):
    """The expiry of the token *response* (a dict), or None."""
    for key, base in (('expires_at', 0.0), ('expires_in', now)):
        value = response.get(key)
        if value is None:
            continue
        # Some endpoints (Azure AD v1) send expires_in as a string.
        seconds = _finite(value)
        if seconds is None:
            raise MailerConfigurationError(
                f'the OAuth 2.0 token {name} returned an {key} that is not'
                f' a finite number of seconds: {shown(repr(value), 60)}')
        return base + seconds
    return None


def parse_token(value, name, now):
    """``(token, expires_at or None)`` of what the source *name* returned
    at *now*; a `MailerConfigurationError` when it is not a token."""
    expires_at = None
    if isinstance(value, Mapping) and not isinstance(value, dict):
        try:
            value = dict(value)
        except Exception as e:
            # The callable's own object, whatever it does.
            raise MailerConfigurationError(
                f'the OAuth 2.0 token {name} returned a mapping that cannot'
                f' be read: {type(e).__name__}: {shown(e)}') from None
    if isinstance(value, dict):
        if 'access_token' not in value:
            error = value.get('error_description') or value.get('error')
            raise MailerConfigurationError(
                f'the OAuth 2.0 token {name} returned no access_token'
                + (f': {shown(error)}' if error else ''))
        expires_at = _expiry(value, name, now)
        value = value['access_token']
    if not isinstance(value, str):
        raise MailerConfigurationError(
            f'the OAuth 2.0 token {name} returned a'
            f' {type(value).__name__}, not a token')
    token = value.strip()
    # RFC 6750's b64token: never shown, even when it is something else.
    if not token or not token.isascii() or not token.isprintable() or \
            ' ' in token:
        raise MailerConfigurationError(
            f'the OAuth 2.0 token {name} returned no bearer token'
            f' ({len(token)} characters)')
    if expires_at is None:
        expires_at = _jwt_expiry(token)
    return token, expires_at
