"""STARTTLS and AUTH on a greeted connection: when credentials may go.

A password or an OAuth 2.0 token is sent only over TLS, with two
exceptions: the relay is on this host (the address of the connected peer
is a loopback address: decided by the address, since a name can resolve
anywhere), or the mailer says ``no_tls``, the site's explicit choice of a
plain connection.  Otherwise `authenticate` raises a
`MailerConfigurationError` naming the relay and the setting, before a word
of the credentials is sent.  A relay that offers STARTTLS and then refuses
it gets no credentials either (`starttls`): never a fallback to plaintext,
since whoever answered may be the one reading what follows.  Without
credentials a refused STARTTLS is only a warning (unless ``force_tls``).
"""
import ipaddress
import logging
import smtplib

from zope.sendmail.smtp.classify import reply_text
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import TemporaryDeliveryError
from zope.sendmail.smtp.oauth2 import login as xoauth2_login


log = logging.getLogger(__name__)


def credentials(mailer):
    """What *mailer* authenticates with: ``'password'``, ``'OAuth 2.0
    token'``, or None (no AUTH)."""
    if getattr(mailer, 'token_provider', None) is not None:
        return 'OAuth 2.0 token'
    if mailer.username is not None and mailer.password is not None:
        return 'password'
    return None


def starttls(smtp, mailer, relay):
    """Say STARTTLS to *relay* (``host:port``), which offers it, over the
    greeted smtplib client *smtp*; return whether the connection is now
    encrypted (greeted again if so)."""
    try:
        code, reply = smtp.starttls(context=mailer.tls_context())
    except smtplib.SMTPResponseException as e:
        code, reply = e.smtp_code, e.smtp_error
    if code == 220:
        smtp.ehlo()
        return True
    said = f'{code} {reply_text(reply)}'
    secret = credentials(mailer)
    if secret is not None:
        # A 454 ("TLS not available due to temporary reason") may pass;
        # any other refusal will not.
        cls = TemporaryDeliveryError if 400 <= code < 500 else \
            MailerConfigurationError
        raise cls(f'the relay {relay} offers STARTTLS but refused it'
                  f' ({said}): the {secret} of {mailer.username!r} is not'
                  f' sent unencrypted', code=code, reply=reply)
    if mailer.force_tls:
        raise MailerConfigurationError(
            f'TLS is required (force_tls) but the relay {relay} refused'
            f' STARTTLS ({said})', code=code, reply=reply)
    log.warning('%s refused STARTTLS (%s); sending unencrypted', relay,
                said)
    return False


def is_loopback(smtp):
    """Whether the peer of *smtp*'s socket has a loopback address; False
    when that cannot be told (no socket: not known to be local)."""
    try:
        address = smtp.sock.getpeername()[0]
        ip = ipaddress.ip_address(address.split('%', 1)[0])
    except (AttributeError, OSError, ValueError, TypeError, IndexError):
        return False
    # ::ffff:127.0.0.1 (a dual-stack socket) is 127.0.0.1.
    ip = getattr(ip, 'ipv4_mapped', None) or ip
    return ip.is_loopback


def authenticate(smtp, mailer, relay, encrypted):
    """Log in to *relay* over *smtp* as *mailer* says, if it has
    credentials; *encrypted* says whether the connection is."""
    secret = credentials(mailer)
    if secret is None:
        return
    if not encrypted and not mailer.no_tls and not is_loopback(smtp):
        raise MailerConfigurationError(
            f'the relay {relay} does not offer STARTTLS, and the {secret}'
            f' of {mailer.username!r} goes unencrypted only to a relay on'
            f' this host: set no_tls to send it in clear all the same (or'
            f' implicit_tls, for a relay speaking TLS from the first byte)')
    if secret == 'OAuth 2.0 token':
        xoauth2_login(smtp, mailer.username, mailer.token_provider, relay,
                      encrypted)
        return
    if not smtp.has_extn('auth'):
        raise MailerConfigurationError(
            f'a username is set but the relay {relay} does not offer AUTH'
            + ('' if encrypted else ' on an unencrypted connection'))
    smtp.login(mailer.username, mailer.password)
