"""Classification of SMTP failures: permanent, temporary or configuration.

The mailer raises what smtplib, ssl and socket raise, turned into one of
the three `MailDeliveryError` subclasses of `zope.sendmail.interfaces`, so
that deliveries and queue processors decide what to do from the class alone:
a permanent error is not retried, a temporary one is, and a configuration
error blames no message.  The relay's limits are temporary errors of their
own classes (`zope.sendmail.relayinterfaces`): a connection turned away
(`RelayBusyError`), "too fast" (`ThrottledError`) and a used-up quota
(`QuotaExceededError`).  Only this module reads reply texts for them.
"""
import re
import smtplib
import socket
import ssl

from zope.sendmail.display import printable
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.interfaces import TemporaryDeliveryError
from zope.sendmail.relayinterfaces import QuotaExceededError
from zope.sendmail.relayinterfaces import RelayBusyError
from zope.sendmail.relayinterfaces import ThrottledError
from zope.sendmail.smtpclient import ReplyLimitError


# "Too fast": a 4.7.x status (Gmail's 421 4.7.0, Exchange's 4.7.x) or the
# words of SES ("454 Throttling failure: Maximum sending rate exceeded")
# and others ("450 4.2.1 ... receiving mail at a rate ...").
_THROTTLING = re.compile(
    r'\b4[.]7[.]\d{1,3}\b|throttl|too (?:many|fast)|\brate\b|slow down',
    re.I)
# The relay's quota for a period, never a recipient's full mailbox ("452
# 4.2.2 over quota"): SES's "Daily message quota exceeded", Exchange's
# "554 5.2.0 ... SubmissionQuotaExceededException".
_QUOTA = re.compile(r'daily|per[ -]day|(?:sending|message|submission) ?quota'
                    r'|quotaexceeded', re.I)


def is_throttling(code, reply):
    """Whether the 4xx reply *code* *reply* says "too fast"."""
    return 400 <= code < 500 and bool(_THROTTLING.search(reply_text(reply)))


def is_quota(code, reply):
    """Whether the reply *code* *reply* says the relay's quota is used up.
    """
    return code >= 400 and bool(_QUOTA.search(reply_text(reply)))


def reply_text(reply):
    """An SMTP reply (bytes from smtplib) as text."""
    if isinstance(reply, bytes):
        return reply.decode('utf-8', 'replace')
    return str(reply)


def classify_reply(code, reply, what, recipients=None):
    """The exception for an SMTP reply *code* refusing *what* (a sender,
    a message): 5xx is permanent, anything else temporary; a used-up
    quota, a 421 (the relay closes the connection) and a "too fast" 4xx
    are the relay's conditions."""
    if is_quota(code, reply):
        cls = QuotaExceededError
    elif code == 421 or is_throttling(code, reply):
        cls = ThrottledError
    elif 500 <= code < 600:
        cls = PermanentDeliveryError
    else:
        cls = TemporaryDeliveryError
    return cls(f'{what}: {code} {reply_text(reply)}', code=code, reply=reply,
               recipients=recipients)


def refused_text(refused):
    """*refused* (recipient -> ``(code, reply)``) as one line of text,
    printable (`zope.sendmail.display`): logs, reasons and events show it.
    """
    return 'recipients refused: ' + '; '.join(
        f'{printable(addr)}: {code} {printable(reply_text(reply))}'
        for addr, (code, reply) in refused.items())


def refused_error(refused):
    """The exception for a message whose every recipient was refused
    (*refused* maps each to its ``(code, reply)``): temporary if any
    refusal was, so that the caller retries those."""
    codes = [code for code, _ in refused.values()]
    cls = TemporaryDeliveryError if any(c < 500 for c in codes) else \
        PermanentDeliveryError
    if all(code == 421 or is_throttling(code, reply)
           for code, reply in refused.values()):
        cls = ThrottledError  # every refusal said "too fast"
    return cls('all ' + refused_text(refused), code=max(codes),
               recipients=refused)


def classify_error(error, where, mailer):
    """Turn *error*, raised while doing *where* (``"connecting to h:p"``),
    into a classified `MailDeliveryError`; return it unchanged when it is
    not a mail or network problem (a bug must not pass for a bad relay)."""
    connecting = where.startswith('connecting')
    if isinstance(error, MailDeliveryError):
        return error
    if isinstance(error, smtplib.SMTPResponseException) and connecting \
            and 400 <= error.smtp_code < 500:
        # A 4xx greeting, or reply to EHLO or AUTH: the relay is there but
        # takes no more connections for now (432 4.3.2, 421, 454 4.7.0).
        return RelayBusyError(
            f'{where}: turned away: {error.smtp_code}'
            f' {reply_text(error.smtp_error)}',
            code=error.smtp_code, reply=error.smtp_error)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return MailerConfigurationError(
            f'{where}: authentication as {mailer.username!r} refused:'
            f' {error.smtp_code} {reply_text(error.smtp_error)}',
            code=error.smtp_code, reply=error.smtp_error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return MailerConfigurationError(
            f'{where}: certificate did not verify: {error.verify_message}'
            f' (trust its CA with tls_ca_file, or turn tls_verify off at'
            f' your own risk)')
    if isinstance(error, ssl.SSLError) and connecting and not isinstance(
            error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        # A handshake that fails for protocol reasons (implicit TLS
        # against a plain port, no common cipher) will fail every time.
        return MailerConfigurationError(f'{where}: TLS failed: {error}')
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(
            error.__context__, TimeoutError):
        # smtplib reports a timed-out reply as a disconnection.
        error = error.__context__
    if isinstance(error, (socket.timeout, TimeoutError)):
        return TemporaryDeliveryError(
            f'{where}: timed out after {mailer.timeout} s')
    if connecting and isinstance(error, (
            smtplib.SMTPServerDisconnected, ConnectionResetError,
            ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError)):
        # The relay accepted the TCP connection, then hung up or reset it
        # during the handshake: there, but not taking this connection.
        detail = str(error) or type(error).__name__
        return RelayBusyError(f'{where}: turned away: {detail}')
    if isinstance(error, smtplib.SMTPResponseException):
        # A refusal of the session (greeting, HELO, a 421) is the relay's
        # problem, never the message's: always temporary.
        return TemporaryDeliveryError(
            f'{where}: {error.smtp_code} {reply_text(error.smtp_error)}',
            code=error.smtp_code, reply=error.smtp_error)
    if isinstance(error, ReplyLimitError):
        # A relay talking without end (or a byte at a time): the
        # connection is closed, as if dropped; maybe better next time.
        return TemporaryDeliveryError(f'{where}: {error}')
    if isinstance(error, smtplib.SMTPException) and not isinstance(
            error, smtplib.SMTPServerDisconnected):
        # smtplib's own complaints: an extension we need is missing.
        return MailerConfigurationError(f'{where}: {error}')
    if isinstance(error, OSError):
        # Refused, unreachable, reset or dropped (SMTPServerDisconnected
        # and ssl's EOF errors are OSErrors too): the relay may be back.
        detail = str(error) or type(error).__name__
        return TemporaryDeliveryError(f'{where}: {detail}')
    return error
