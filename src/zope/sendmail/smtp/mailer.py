"""The SMTP mailer: the settings of a relay, and the 7.3 mailer protocol.

`SMTPMailer` holds how to reach and talk to a relay (host, port, TLS,
credentials, timeout, certificate checks) and opens connections to it
(`zope.sendmail.smtp.connection`), each carrying any number of messages; for
direct deliveries it keeps one idle connection between transactions
(`cached_connect`, `zope.sendmail.smtp.connectioncache`).  Every
failure leaves as a `MailDeliveryError` subclass saying whether it is
permanent, temporary or a configuration problem.  This module knows nothing
of queues or transactions.
"""
import logging
import smtplib
import ssl
import threading

from zope.interface import implementer

from zope.sendmail.smtp.classify import refused_text
from zope.sendmail.smtp.connection import SMTPConnection
from zope.sendmail.smtp.connectioncache import ConnectionCache
from zope.sendmail.interfaces import ISMTPMailer
from zope.sendmail.smtp.oauth2 import make_provider


log = logging.getLogger(__name__)


@implementer(ISMTPMailer)
class SMTPMailer:
    """Relays mail over SMTP; see `ISMTPMailer`.

    Class attributes give every setting a default, so that a subclass
    whose ``__init__`` does not call this one still works.

    ``smtp`` is the factory of the SMTP client, as in 7.3: smtplib's
    `smtplib.SMTP` (`smtplib.SMTP_SSL` with ``implicit_tls``), used as its
    bounded subclass (`zope.sendmail.smtp.client`); or a factory of your
    own, set on an instance, a subclass or this class, called as 7.3 called
    it, ``smtp(hostname, str(port), timeout=timeout)``, and its client
    driven as 7.3 drove it (`ISMTPClient73`).
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
    oauth2_token = oauth2_token_command = token_provider = None

    def __init__(self, hostname='localhost', port=25, username=None,
                 password=None, no_tls=False, force_tls=False,
                 implicit_tls=False, timeout=10, ssl_context=None,
                 tls_verify=True, tls_ca_file=None, oauth2_token=None,
                 oauth2_token_command=None):
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
        # An IOAuth2TokenProvider, which XOAUTH2 logins take tokens from.
        self.token_provider = make_provider(oauth2_token, oauth2_token_command,
                                            username, password)
        self.oauth2_token = oauth2_token
        self.oauth2_token_command = oauth2_token_command
        # As in 7.3: a factory of the user's (a subclass's, or set on this
        # class) is kept, implicit TLS or not; a None is the default.
        if self.smtp is None:
            self.smtp = smtplib.SMTP
        if implicit_tls and self.smtp is smtplib.SMTP:
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

    #: Seconds a direct delivery's connection is kept open for the next
    #: transaction (see `cached_connect`).
    connection_cache_time = 2.0

    @property
    def connection_cache(self):
        """This mailer's `ConnectionCache` (``clear()`` closes the idle
        connection now)."""
        cache = self.__dict__.get('_connection_cache')
        if cache is None:
            cache = self.__dict__.setdefault(
                '_connection_cache',
                ConnectionCache(self.connect, self.connection_cache_time))
        return cache

    def cached_connect(self):
        """A connection from `connection_cache`: the one the last
        transaction left if it is fresh, else a new one; ``close()`` gives
        it back.  What a direct delivery uses."""
        return self.connection_cache.acquire()

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
        if refused:
            log.warning('relay %s:%s: %s', self.hostname, self.port,
                        refused_text(refused))
        return refused

    def abort(self):
        pending = self._pending()
        connection = getattr(pending, 'connection', None)
        pending.connection = None
        if connection is not None:
            connection.close()
