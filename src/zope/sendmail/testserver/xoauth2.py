"""SASL XOAUTH2 in the SMTP test server.

This module owns the server side of ``AUTH XOAUTH2`` (the mechanism of
Microsoft 365 and Gmail): :class:`_XOAuth2Handler`, a mixin of the
``aiosmtpd`` handler whose ``auth_XOAUTH2`` method ``aiosmtpd`` offers and
calls.  The server's ``oauth2_tokens`` (``{user: token}``, changeable by the
test at any time) says which token is currently valid for whom; any other
token is refused as an expired or revoked one is: a ``334`` challenge
carrying the base64 JSON error, the client's empty line, then
``535 5.7.3 Authentication unsuccessful``, as Exchange Online answers.
``reject_auth`` refuses every token.
"""
import binascii
import json
from base64 import b64decode

from aiosmtpd.smtp import MISSING
from aiosmtpd.smtp import AuthResult


#: The JSON error a refusal's 334 challenge carries (RFC 7628, 3.2.2).
ERROR = {'status': '401', 'schemes': 'bearer',
         'scope': 'https://outlook.office.com/SMTP.Send'}
REFUSED = '535 5.7.3 Authentication unsuccessful'


def parse_initial_response(blob):
    """``(user, token)`` of a decoded XOAUTH2 initial response
    (``user=U^Aauth=Bearer T^A^A``), or None when it is malformed."""
    try:
        text = blob.decode('utf-8')
    except UnicodeDecodeError:
        return None
    fields = text.split('\x01')
    if len(fields) != 4 or fields[2:] != ['', '']:
        return None
    user, auth = fields[0], fields[1]
    if not user.startswith('user=') or not auth.startswith('auth=Bearer '):
        return None
    return user[len('user='):], auth[len('auth=Bearer '):]


class _XOAuth2Handler:
    """``AUTH XOAUTH2`` for the handler of the test server (``self.srv``).
    """

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            try:
                blob = b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth('')
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        parsed = parse_initial_response(blob)
        if parsed is None:
            await server.push('501 5.5.2 malformed XOAUTH2 response')
            return AuthResult(success=False, handled=True)
        user, token = parsed
        tokens = self.srv.oauth2_tokens
        if not self.srv.reject_auth and user in tokens and \
                tokens[user] == token:
            return AuthResult(success=True, auth_data=user)
        # The client must answer the challenge (with an empty line) before
        # it learns the outcome.
        answer = await server.challenge_auth(json.dumps(ERROR))
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=REFUSED)
