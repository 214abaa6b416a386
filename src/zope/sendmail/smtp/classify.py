"""Classification of SMTP failures: permanent, temporary or configuration.

The mailer raises what smtplib, ssl and socket raise, turned into one of
the three `MailDeliveryError` subclasses of `zope.sendmail.interfaces`, so
that deliveries and queue processors decide what to do from the class alone:
a permanent error is not retried, a temporary one is, and a configuration
error blames no message.  The relay's limits are temporary errors of their
own classes (`zope.sendmail.interfaces`): a connection turned away
(`RelayBusyError`), "too fast" (`ThrottledError`) and a used-up quota
(`QuotaExceededError`).  Only this module reads reply texts for them.

Whose reply it is depends on the command it answers (its *stage*).  A
reply to ``RCPT TO`` concerns that recipient: greylisting (``451 4.7.1``),
a full mailbox, a recipient receiving too fast (``450 4.2.1``).  Only a
``421`` (the relay closes the connection) and texts naming a rate (but
not a recipient cap, nor a recipient's own status) pace the relay at any
stage; at ``MAIL FROM`` a ``4.7.x`` status does too ("try again later").
A ``4.7.x`` at the end of ``DATA`` is a policy verdict on this message
(greylisting by a content filter, a DMARC check failing for now), not
the relay's pace: the message is deferred with backoff, as any message
refused for now, and the others go on.  A recipient cap (``452 4.5.3
Too many recipients``, RFC 5321 4.5.3.1.10) is neither: the connection
sends the rest in another transaction (`is_cap`).
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
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.display import SHOWN
from zope.sendmail.display import shortlist
from zope.sendmail.smtp.client import ReplyLimitError


#: The stages of a transaction whose replies are told apart.
MAIL, RCPT, DATA = 'MAIL FROM', 'RCPT TO', 'DATA'

# "Too fast" in words: SES's "454 Throttling failure: Maximum sending rate
# exceeded", "too many messages", Gmail's "4.7.28 ... unusual rate".  Not
# a bare 4.7.x status, which greylisting and policy refusals share, and
# not "too many recipients", a cap on one transaction.
_RATE = re.compile(
    r'throttl|too (?:many\b(?! (?:recipients|rcpt))|fast)|\brate\b'
    r'|rate[ -]?limit|slow down', re.I)
# RFC 5321 4.5.3.1.10: "452 Too many recipients" (X.5.3 in RFC 3463).
_CAP = re.compile(r'\b[45][.]5[.]3\b|too many (?:recipients|rcpt)', re.I)
# The enhanced status code (RFC 3463) opening a reply's text.
_STATUS = re.compile(r'\s*[245][.](\d{1,3})[.]\d{1,3}\b')
# The relay's quota for a period, never a recipient's full mailbox ("452
# 4.2.2 over quota"): SES's "Daily message quota exceeded", Exchange's
# "554 5.2.0 ... SubmissionQuotaExceededException".
_QUOTA = re.compile(r'daily|per[ -]day|(?:sending|message|submission) ?quota'
                    r'|quotaexceeded', re.I)


def _subject(text):
    """The subject of the reply's enhanced status code (``'7'`` for
    4.7.1: security or policy), or None."""
    match = _STATUS.match(text)
    return match.group(1) if match else None


def is_cap(code, reply):
    """Whether *code* *reply*, answering ``RCPT TO``, says the transaction
    has as many recipients as the relay takes: ``452`` (or ``552``, which
    RFC 5321 asks clients to take as ``452``) with status X.5.3 or the
    words "too many recipients".  The rest go in another transaction."""
    return code in (452, 552) and bool(_CAP.search(reply_text(reply)))


def is_throttling(code, reply, stage=None):
    """Whether the 4xx reply *code* *reply* to a command of *stage*
    (`MAIL`, `RCPT`, `DATA` or None) says "too fast": its text names a
    rate, unless it is a recipient cap, or, at `RCPT`, a recipient's own
    address or mailbox status (``450 4.2.1 ... receiving mail at a
    rate``); at `MAIL` a ``4.7.x`` status is enough."""
    if not 400 <= code < 500 or is_cap(code, reply):
        return False
    text = reply_text(reply)
    subject = _subject(text)
    if stage == RCPT and subject in ('1', '2'):
        return False  # the recipient's address or mailbox, not the relay
    return bool(_RATE.search(text)) or (stage == MAIL and subject == '7')


def is_quota(code, reply):
    """Whether the reply *code* *reply* says the relay's quota is used up.
    """
    return code >= 400 and bool(_QUOTA.search(reply_text(reply)))


def is_permanent(code, reply):
    """Whether a recipient refused with *code* *reply* is refused for
    good: a 5xx, but for a recipient cap (see `is_cap`)."""
    return code >= 500 and not is_cap(code, reply)


def reply_text(reply):
    """An SMTP reply (bytes from smtplib) as text."""
    if isinstance(reply, bytes):
        return reply.decode('utf-8', 'replace')
    return str(reply)


def _relays(code, reply, stage):
    """The relay's condition that the reply names, or None."""
    if is_quota(code, reply):
        return QuotaExceededError
    if code == 421 or is_throttling(code, reply, stage):
        return ThrottledError
    return None


def classify_reply(code, reply, what, recipients=None, stage=None):
    """The exception for an SMTP reply *code* refusing *what* (a sender,
    a message) at *stage* (`MAIL`, `DATA`; None when unknown): 5xx is
    permanent, anything else temporary; a used-up quota, a 421 (the relay
    closes the connection) and a "too fast" 4xx (`is_throttling`) are the
    relay's conditions."""
    cls = _relays(code, reply, stage)
    if cls is None:
        cls = PermanentDeliveryError if 500 <= code < 600 else \
            TemporaryDeliveryError
    return cls(f'{what}: {code} {reply_text(reply)}', code=code, reply=reply,
               recipients=recipients)


def refused_text(refused, shown=SHOWN):
    """*refused* (recipient -> ``(code, reply)``) as one line of text,
    printable (`zope.sendmail.display`): logs, reasons and events show it.
    The first *shown* refusals and how many more; all of them when *shown*
    is None (see `zope.sendmail.display`)."""
    return 'recipients refused: ' + shortlist(
        (f'{printable(addr)}: {code} {printable(reply_text(reply))}'
         for addr, (code, reply) in refused.items()), shown, '; ')


def unsent_reply(error):
    """The ``(code, reply)`` of the recipients a refused or failed
    transaction *error* left without the message, after others got it in
    earlier transactions: the relay's reply, else a 451 (temporary) saying
    why."""
    if error.code is not None and error.reply is not None:
        return error.code, error.reply
    return 451, f'not sent: {error}'.encode('utf-8')


def refused_error(refused):
    """The exception for a message whose every recipient was refused
    (*refused* maps each to its ``(code, reply)`` to ``RCPT TO``):
    temporary if any refusal was, so that the caller retries those; the
    relay's condition when every refusal names it (a 421, "too fast" in
    words, a used-up quota), never for replies about the recipients
    themselves (greylisting, a full mailbox)."""
    permanent = all(is_permanent(c, r) for c, r in refused.values())
    cls = PermanentDeliveryError if permanent else TemporaryDeliveryError
    conditions = {_relays(c, r, RCPT) for c, r in refused.values()}
    if None not in conditions:
        # Every refusal was the relay's: a quota first, it lasts longest.
        cls = QuotaExceededError if QuotaExceededError in conditions \
            else ThrottledError
    codes = [code for code, _ in refused.values()]
    return cls('all ' + refused_text(refused), code=max(codes),
               recipients=refused)


def classify_sendmail_error(error, where, mailer):
    """Turn *error*, raised by smtplib's ``sendmail`` (a client of the
    user's, or a 7.3 mailer's ``send`` calling it), into a classified
    `MailDeliveryError`: every recipient refused (`refused_error`), the
    sender or the message refused (smtplib's class says which command),
    else as `classify_error`."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return refused_error(error.recipients)
    if isinstance(error, smtplib.SMTPResponseException):
        stage = MAIL if isinstance(error, smtplib.SMTPSenderRefused) else \
            DATA if isinstance(error, smtplib.SMTPDataError) else None
        return classify_reply(error.smtp_code, error.smtp_error, 'refused',
                              stage=stage)
    return classify_error(error, where, mailer)


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
