"""One conversation with an SMTP relay, carrying many messages.

`SMTPConnection` connects, greets (EHLO, else HELO), encrypts (STARTTLS or
implicit TLS), authenticates, and then sends message after message: MAIL,
RCPT for each recipient, DATA (in several transactions when the relay caps
the recipients of one: `smtptransaction`).  It does not say RSET between
messages; a relay that dropped the idle connection shows it at the next
MAIL, before anything of that message was sent, and the connection is
reopened.  Every failure leaves as a classified `MailDeliveryError` (see
`classify`).

STARTTLS and AUTH, and when credentials may be sent, are
`zope.sendmail.smtp.tlsauth`'s.  smtplib's classes are used as their bounded
subclasses (`zope.sendmail.smtp.client`): no reply can grow or last without
end.  A factory of the user's in the mailer's ``smtp`` is called and driven
as 7.3 did (`zope.sendmail.smtp.client73`).
"""
import functools
import logging
import smtplib

from zope.interface import implementer

from zope.sendmail.addresses import wire_envelope
from zope.sendmail.smtp.classify import classify_error
from zope.sendmail.smtp.classify import classify_sendmail_error
from zope.sendmail.smtp.classify import reply_text
from zope.sendmail.smtp.datastream import has_crlf_only
from zope.sendmail.smtp.datastream import is_ascii
from zope.sendmail.message import crlf
from zope.sendmail.interfaces import GreetingRefusedError
from zope.sendmail.interfaces import IMailerConnection
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.smtp.client import BoundedSMTP
from zope.sendmail.smtp.client import BoundedSMTP_SSL
from zope.sendmail.smtp.client73 import SMTPClient73
from zope.sendmail.smtp.client73 import as_client
from zope.sendmail.smtp.client73 import client_arguments
from zope.sendmail.smtp.client73 import encrypted
from zope.sendmail.smtp.transaction import SMTPTransactions
from zope.sendmail.smtp.transaction import _Reconnect
from zope.sendmail.smtp.tlsauth import authenticate
from zope.sendmail.smtp.tlsauth import starttls


log = logging.getLogger(__name__)


def _bounded(factory):
    """smtplib's own classes, which the mailer's ``smtp`` names by default,
    as their bounded subclasses; a user's own factory as it is."""
    if factory is smtplib.SMTP:
        return BoundedSMTP
    if factory is smtplib.SMTP_SSL:
        return BoundedSMTP_SSL
    return factory


def _wire_message(message):
    """*message* (text, bytes, or a memoryview of bytes) as bytes or a
    memoryview with CRLF line endings; a copy only when it must be."""
    if isinstance(message, str):
        return crlf(message.encode('utf-8'))
    if isinstance(message, bytes):
        return crlf(message)
    if has_crlf_only(message):
        return memoryview(message)
    return crlf(bytes(message))


@implementer(IMailerConnection)
class SMTPConnection(SMTPTransactions):
    """One conversation with the relay of *mailer*; see `IMailerConnection`.
    The transactions carrying each message come from `SMTPTransactions`.
    """

    def __init__(self, mailer):
        self.mailer = mailer
        self._smtp = None
        self._used = False
        self.encrypted = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def relay(self):
        return f'{self.mailer.hostname}:{self.mailer.port}'

    def open(self):
        """Connect, greet, encrypt and authenticate."""
        self._discard()
        mailer = self.mailer
        factory = getattr(mailer, 'smtp', None) or smtplib.SMTP
        if _bounded(factory) is factory:
            # A factory of the user's, called as 7.3 called it.
            args, kwargs = client_arguments(factory, mailer)
            connect = functools.partial(self._connect_users, factory, args,
                                        kwargs)
        else:
            kwargs = {}
            if mailer.timeout is not None:
                kwargs['timeout'] = mailer.timeout
            factory = _bounded(factory)
            if mailer.implicit_tls:
                if factory is BoundedSMTP:
                    factory = BoundedSMTP_SSL
                kwargs['context'] = mailer.tls_context()
            connect = functools.partial(self._connect, factory, kwargs)
        try:
            connect()
            self._greet()
        except BaseException as e:
            self._discard()
            if isinstance(e, Exception):
                raise classify_error(e, f'connecting to {self.relay}',
                                     self.mailer) from e
            raise
        self._used = False
        log.debug('connected to %s (encrypted: %s)', self.relay,
                  self.encrypted)

    def _connect(self, factory, kwargs):
        """Connect with smtplib's class *factory* (bounded)."""
        mailer = self.mailer
        # Connecting separately from constructing lets us close the
        # socket when the greeting times out (smtplib would leak it).
        self._smtp = factory(**kwargs)
        # smtplib verifies the host name it was constructed with.
        self._smtp._host = mailer.hostname
        code, reply = self._smtp.connect(mailer.hostname, mailer.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, reply)
        self.encrypted = bool(mailer.implicit_tls)

    def _connect_users(self, factory, args, kwargs):
        """Connect with the user's *factory*, as 7.3 did: it returns its
        client connected (smtplib's classes check the greeting
        themselves), driven as `zope.sendmail.smtp.client73` says."""
        mailer = self.mailer
        self._smtp = as_client(factory(*args, **kwargs))
        self.encrypted = encrypted(self._smtp, bool(mailer.implicit_tls))
        if mailer.implicit_tls and not self.encrypted:
            raise MailerConfigurationError(
                f'implicit_tls is set, but the connection to {self.relay}'
                f' that the smtp factory {factory!r} made is not'
                f' encrypted')

    def _greet(self):
        smtp, mailer = self._smtp, self.mailer
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            code, reply = smtp.helo()
            if not 200 <= code < 300:
                raise GreetingRefusedError(
                    f'{self.relay} refused EHLO and HELO: {code}'
                    f' {reply_text(reply)}', code=code, reply=reply)
        if not self.encrypted and not mailer.no_tls and \
                smtp.has_extn('starttls'):
            self.encrypted = starttls(smtp, mailer, self.relay)
            if not isinstance(smtp, BoundedSMTP):
                # A client of the user's: its socket, if it has one, has
                # the last word on what its STARTTLS did.
                self.encrypted = encrypted(smtp, self.encrypted)
        if mailer.force_tls and not self.encrypted:
            raise MailerConfigurationError(
                f'TLS is required (force_tls) but the relay {self.relay}'
                f' does not offer STARTTLS')
        authenticate(smtp, mailer, self.relay, self.encrypted)

    def _discard(self):
        smtp, self._smtp, self.encrypted = self._smtp, None, False
        if smtp is not None:
            smtp.close()

    def send(self, fromaddr, toaddrs, message):
        if self._smtp is None:
            self.open()  # _used is false after it
        if isinstance(self._smtp, SMTPClient73):
            return self._sendmail(fromaddr, toaddrs, message)
        message = _wire_message(message)
        toaddrs = list(toaddrs)
        if not isinstance(self._smtp, BoundedSMTP):
            # A factory of the user's: smtplib's data() wants bytes.
            message = bytes(message)
        if self._used:
            # No RSET between messages (one round trip less each): a relay
            # that dropped the idle connection shows it at MAIL, before
            # anything of this message was sent, so reconnecting is safe.
            try:
                return self._transaction(fromaddr, toaddrs, message)
            except _Reconnect:
                log.debug('%s dropped the connection between messages;'
                          ' reconnecting', self.relay)
                self.open()
        return self._transaction(fromaddr, toaddrs, message)

    def _sendmail(self, fromaddr, toaddrs, message):
        """Send as 7.3 did, through a client of the user's that is not
        smtplib's: one ``sendmail`` with the addresses and the message as
        the mailer was given them (a memoryview as bytes), then QUIT,
        whatever happened.  One client per message, as in 7.3: none is
        used again in a state only it knows (dropped by the relay while
        idle, say), and the next message gets a new one.  Its refusals
        are classified as smtplib's are."""
        if isinstance(message, memoryview):
            message = bytes(message)
        try:
            refused = self._smtp.sendmail(fromaddr, toaddrs, message)
        except Exception as e:
            error = classify_sendmail_error(e, f'sending via {self.relay}',
                                            self.mailer)
            if error is e:
                raise
            raise error from e
        finally:
            self.close()
        # smtplib's sendmail returns the recipients refused while others
        # took the message; 7.3's doubles return None.
        return dict(refused) if isinstance(refused, dict) else {}

    def _mail_options(self, fromaddr, toaddrs, message):
        """``(sender, recipients, options)`` of the MAIL and RCPT commands
        for this message (see `zope.sendmail.addresses`); a
        `PermanentDeliveryError` when this relay cannot take it."""
        smtp = self._smtp
        try:
            sender, recipients, smtputf8 = wire_envelope(fromaddr, toaddrs)
        except ValueError as e:
            # Queued before send() checked domains: it can never go.
            raise PermanentDeliveryError(str(e)) from None
        options = []
        if smtp.does_esmtp and smtp.has_extn('size'):
            options.append(f'size={len(message)}')
        if not is_ascii(message) and smtp.has_extn('8bitmime'):
            options.append('BODY=8BITMIME')
        if smtputf8 is not None:
            if not smtp.has_extn('smtputf8'):
                what, address = smtputf8
                raise PermanentDeliveryError(
                    f'the relay {self.relay} does not offer SMTPUTF8, which'
                    f' the {what} {address!r} needs (its local part is not'
                    f' ASCII)')
            options.append('SMTPUTF8')
        return sender, recipients, options

    def close(self):
        smtp = self._smtp
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError) as e:
            # The messages were accepted before QUIT was said; a relay
            # that hangs up instead of answering it loses us nothing.
            log.debug('QUIT to %s failed: %s', self.relay, e)
        finally:
            self._discard()
