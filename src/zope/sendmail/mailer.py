"""The SMTP conversation: connect, greet, encrypt, authenticate, send.

`SMTPMailer` holds the settings and opens `SMTPConnection` objects; a
connection carries any number of messages (RSET between them, and a fresh
connection when the relay dropped the old one).  Every failure leaves here
as a `MailDeliveryError` subclass saying whether it is permanent, temporary
or a configuration problem.  This module knows nothing of queues or
transactions.
"""
import logging
import smtplib
import ssl
import threading

from zope.interface import implementer

from zope.sendmail.classify import classify_error
from zope.sendmail.classify import classify_reply
from zope.sendmail.classify import refused_error
from zope.sendmail.classify import reply_text
from zope.sendmail.envelope import crlf
from zope.sendmail.interfaces import IMailerConnection
from zope.sendmail.interfaces import ISMTPMailer
from zope.sendmail.interfaces import MailerConfigurationError


log = logging.getLogger(__name__)


@implementer(ISMTPMailer)
class SMTPMailer:
    """Relays mail over SMTP; see `ISMTPMailer`.

    Class attributes give every setting a default, so that a subclass
    whose ``__init__`` does not call this one still works.
    """

    smtp = smtplib.SMTP
    hostname = 'localhost'
    port = 25
    username = None
    password = None
    no_tls = False
    force_tls = False
    implicit_tls = False
    timeout = 10.0
    tls_verify = True
    tls_ca_file = None
    ssl_context = None

    def __init__(self, hostname='localhost', port=25, username=None,
                 password=None, no_tls=False, force_tls=False,
                 implicit_tls=False, timeout=10, ssl_context=None,
                 tls_verify=True, tls_ca_file=None):
        if no_tls and (force_tls or implicit_tls):
            raise ValueError('no_tls contradicts force_tls and implicit_tls:'
                             ' choose one')
        self.hostname = hostname
        self.port = int(port)
        self.username = username
        self.password = password
        self.no_tls = no_tls
        self.force_tls = force_tls
        self.implicit_tls = implicit_tls
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.tls_verify = tls_verify
        self.tls_ca_file = tls_ca_file
        if implicit_tls:
            self.smtp = smtplib.SMTP_SSL

    def __repr__(self):
        return f'<{type(self).__name__} {self.hostname}:{self.port}>'

    def tls_context(self):
        """The `ssl.SSLContext` used for STARTTLS and implicit TLS."""
        if self.ssl_context is not None:
            return self.ssl_context
        key = (self.tls_verify, self.tls_ca_file)
        cached = self.__dict__.get('_tls_context_cache')
        if cached is None or cached[0] != key:
            context = ssl.create_default_context(cafile=self.tls_ca_file)
            if not self.tls_verify:
                # The documented opt-out: encrypt, but trust anyone.
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            cached = self._tls_context_cache = (key, context)
        return cached[1]

    def connect(self):
        connection = SMTPConnection(self)
        connection.open()
        return connection

    # The 7.3 protocol: vote() opens a connection that the next send() of
    # the same thread uses and closes; send() alone opens its own.

    def _pending(self):
        return self.__dict__.setdefault('_local', threading.local())

    def vote(self, fromaddr, toaddrs, message):
        self.abort()
        self._pending().connection = self.connect()

    def send(self, fromaddr, toaddrs, message):
        pending = self._pending()
        connection = getattr(pending, 'connection', None)
        pending.connection = None
        if connection is None:
            connection = self.connect()
        with connection:
            refused = connection.send(fromaddr, toaddrs, message)
        for address, (code, reply) in refused.items():
            log.warning('relay %s:%s refused recipient %s: %s %s',
                        self.hostname, self.port, address, code,
                        reply_text(reply))
        return refused

    def abort(self):
        pending = self._pending()
        connection = getattr(pending, 'connection', None)
        pending.connection = None
        if connection is not None:
            connection.close()


class _SMTP_SSL(smtplib.SMTP_SSL):
    """smtplib's SMTPS client, closing the socket when the handshake fails
    instead of leaving it to the garbage collector."""

    def _get_socket(self, host, port, timeout):
        sock = smtplib.SMTP._get_socket(self, host, port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise


@implementer(IMailerConnection)
class SMTPConnection:
    """One conversation with the relay of *mailer*; see `IMailerConnection`.
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
        kwargs = {}
        if mailer.timeout is not None:
            kwargs['timeout'] = mailer.timeout
        if mailer.implicit_tls:
            if factory in (smtplib.SMTP, smtplib.SMTP_SSL):
                factory = _SMTP_SSL
            kwargs['context'] = mailer.tls_context()
        try:
            # Connecting separately from constructing lets us close the
            # socket when the greeting times out (smtplib would leak it).
            self._smtp = factory(**kwargs)
            # smtplib verifies the host name it was constructed with.
            self._smtp._host = mailer.hostname
            code, reply = self._smtp.connect(mailer.hostname, mailer.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            self.encrypted = bool(mailer.implicit_tls)
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

    def _greet(self):
        smtp, mailer = self._smtp, self.mailer
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            code, reply = smtp.helo()
            if not 200 <= code < 300:
                raise smtplib.SMTPHeloError(code, reply)
        if not mailer.implicit_tls and not mailer.no_tls:
            if smtp.has_extn('starttls'):
                code, reply = smtp.starttls(context=mailer.tls_context())
                if code == 220:
                    self.encrypted = True
                    smtp.ehlo()
                elif not mailer.force_tls:
                    log.warning('%s refused STARTTLS (%s %s); sending'
                                ' unencrypted', self.relay, code,
                                reply_text(reply))
        if mailer.force_tls and not self.encrypted:
            raise MailerConfigurationError(
                f'TLS is required (force_tls) but the relay {self.relay}'
                f' does not offer STARTTLS')
        if mailer.username is not None and mailer.password is not None:
            if not smtp.has_extn('auth'):
                raise MailerConfigurationError(
                    f'a username is set but the relay {self.relay} does not'
                    f' offer AUTH' + ('' if self.encrypted else
                                      ' on an unencrypted connection'))
            smtp.login(mailer.username, mailer.password)

    def _discard(self):
        smtp, self._smtp, self.encrypted = self._smtp, None, False
        if smtp is not None:
            smtp.close()

    def send(self, fromaddr, toaddrs, message):
        if isinstance(message, str):
            message = message.encode('utf-8')
        message = crlf(message)
        if self._smtp is None:
            self.open()
        elif self._used:
            try:
                code, reply = self._smtp.rset()
                ok = code == 250
            except (smtplib.SMTPException, OSError):
                ok = False
            if not ok:
                # The relay dropped or timed out the idle connection:
                # nothing of this message was sent yet, so reconnecting
                # is safe.
                log.debug('connection to %s lost between messages;'
                          ' reconnecting', self.relay)
                self.open()
        self._used = True
        try:
            return self._smtp.sendmail(fromaddr, list(toaddrs), message)
        except smtplib.SMTPRecipientsRefused as e:
            raise refused_error(e.recipients) from e
        except smtplib.SMTPSenderRefused as e:
            raise classify_reply(e.smtp_code, e.smtp_error,
                                 f'sender {fromaddr} refused') from e
        except smtplib.SMTPDataError as e:
            raise classify_reply(e.smtp_code, e.smtp_error,
                                 'message refused') from e
        except Exception as e:
            # Dropped, timed out, or an odd reply: the connection is in an
            # unknown state, so the next message gets a fresh one.
            self._discard()
            raise classify_error(e, f'sending via {self.relay}',
                                 self.mailer) from e

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
