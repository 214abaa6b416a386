"""How a mailer is driven: `open_connection`, and the mailers with only
7.3's `IMailer` methods, driven as connections.

`open_connection` is the one place that decides, for direct delivery and
the queue processor alike: a mailer with ``connect()`` opens connections
(through its connection cache, for direct delivery); a mailer without (one
written for 7.3) is used through a `SingleMessageConnection`, so that both
treat such mailers as 7.3 did.
"""
import warnings

from zope.interface import implementer

from zope.sendmail.smtp.classify import classify_sendmail_error
from zope.sendmail.interfaces import IMailerConnection


def open_connection(mailer, cached=False, first=None):
    """An `IMailerConnection` to send through *mailer* with.

    A mailer with ``connect()`` opens a connection; with *cached* (direct
    delivery) the one its connection cache keeps, when it has one
    (``cached_connect``): a queue processor, whose schedule counts its
    connections, never takes it.  A mailer with only the `IMailer` methods
    is driven through a `SingleMessageConnection`; *first*, the
    ``(fromaddr, toaddrs, message)`` of the first message to send, lets
    its ``vote`` prepare it (direct delivery's vote, as 7.3 voted).
    Raises as ``connect`` or ``vote`` do.
    """
    connect = getattr(mailer, 'connect', None)
    if connect is None:
        connection = SingleMessageConnection(mailer)
        if first is not None:
            connection.vote(*first)
        return connection
    if cached:
        connect = getattr(mailer, 'cached_connect', connect)
    return connect()


@implementer(IMailerConnection)
class SingleMessageConnection:
    """A connection for a mailer with only the `IMailer` methods: each
    message goes through ``mailer.send``.  The one place that drives such
    mailers, for direct delivery and the queue processor alike: as 7.3
    did, a ``vote`` or ``abort`` that is None is skipped, and a missing
    ``vote`` is skipped with a DeprecationWarning."""

    #: A 7.3 mailer sends each message in one transaction.
    max_recipients = None

    def __init__(self, mailer):
        self.mailer = mailer
        self._voted = False

    @property
    def relay(self):
        """The mailer's ``hostname:port`` when it has them, else None."""
        hostname = getattr(self.mailer, 'hostname', None)
        port = getattr(self.mailer, 'port', None)
        if not hostname:
            return None
        return str(hostname) if port is None else f'{hostname}:{port}'

    def vote(self, fromaddr, toaddrs, message):
        """Let the mailer prepare to send (direct delivery's vote)."""
        try:
            vote = self.mailer.vote
        except AttributeError:
            warnings.warn(f'the mailer {self.mailer!r} has no vote method;'
                          f' sending without a vote', DeprecationWarning)
            return
        if vote is not None:
            vote(fromaddr, toaddrs, message)
            self._voted = True

    def send(self, fromaddr, toaddrs, message):
        self._voted = False  # the send uses what the vote prepared
        if isinstance(message, memoryview):
            message = bytes(message)  # as 7.3 gave it: bytes
        try:
            return self.mailer.send(fromaddr, toaddrs, message)
        except Exception as e:
            error = classify_sendmail_error(
                e, f'sending via {self.mailer!r}', self.mailer)
            if error is e:
                raise
            raise error from e

    def close(self):
        """Give up what a vote prepared and no send used."""
        abort = getattr(self.mailer, 'abort', None)
        if self._voted and abort is not None:
            self._voted = False
            abort()
