"""Failover between relays: a mailer sending through the first that works.

`FailoverMailer` holds several mailers, one per relay, and opens each
connection through the first relay that takes it (or, with
``round_robin``, the next one in turn), as Postfix's
``smtp_fallback_relay``, Symfony's ``failover()`` transport and Laravel's
``failover`` mailer do.  A relay whose condition blames no message (it
cannot be reached, refuses the login, lacks the TLS required, or says its
quota is used up) is skipped for ``retry_period`` seconds, then tried
again.  A refusal of a message is the message's: it stays final and is
never offered to another relay; throttling and a connection turned away
slow the sender down (the processor's schedule of that relay), and are
never a reason to switch.  The contract is `IFailoverMailer`.

Each relay's mailer keeps what is its own: its credentials, its TLS
settings, its idle connection for direct delivery.  A connection
(`FailoverConnection`) names the relay it uses in ``relay``; when that
relay says its quota is used up, or refuses the settings on reconnecting,
the connection sends the message through another relay at once (no
recipient got it: `IMailerConnection.send` raises only then).
"""
import logging
import math
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IFailoverMailer
from zope.sendmail.interfaces import IMailerConnection
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import TemporaryDeliveryError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.smtp.single import open_connection


log = logging.getLogger(__name__)

#: What a relay may answer to a message that makes it skipped: the
#: relay's condition, which no message is to blame for, and which every
#: further message would meet there.
SKIPPED_AT_SEND = (MailerConfigurationError, QuotaExceededError)


def relay_name(mailer):
    """The relay of *mailer* as logs name it: ``host:port``, the host
    alone, or the mailer's class for one that has no host (never its
    ``repr``, which a mailer of the user's may fill with a password)."""
    hostname = getattr(mailer, 'hostname', None)
    if not hostname:
        return type(mailer).__name__
    port = getattr(mailer, 'port', None)
    return str(hostname) if port is None else f'{hostname}:{port}'


def _skips(error):
    """Whether *error*, raised while connecting to a relay, is the relay's
    condition that makes it skipped: anything classified but a connection
    turned away (or "too fast"), which slows down instead."""
    return isinstance(error, MailDeliveryError) and not isinstance(
        error, (RelayBusyError, ThrottledError))


def _none_took(errors):
    """The error when no relay took a connection: *errors* is a list of
    ``(relay, error)``.  The class all of them share, where it says what
    the operator is to do (fix the settings; wait for the quota), else a
    temporary error."""
    for cls in (MailerConfigurationError, QuotaExceededError):
        if all(isinstance(e, cls) for _, e in errors):
            break
    else:
        cls = TemporaryDeliveryError
    return cls('no relay took the connection: ' + '; '.join(
        f'{relay}: {error}' for relay, error in errors))


@implementer(IFailoverMailer)
class FailoverMailer:
    """Sends through the first of *mailers* that works; see the module and
    `IFailoverMailer`.  *retry_period*: seconds a relay is skipped;
    *round_robin*: spread new connections over the relays that are up;
    *clock*: monotonic seconds."""

    def __init__(self, mailers, retry_period=60.0, round_robin=False,
                 clock=time.monotonic):
        mailers = list(mailers)
        if not mailers:
            raise ValueError('a FailoverMailer needs at least one mailer')
        if isinstance(retry_period, bool) or not isinstance(
                retry_period, (int, float)) or not (
                math.isfinite(retry_period) and retry_period > 0):
            raise ValueError(f'retry_period must be a positive number of'
                             f' seconds, not {retry_period!r}')
        if not isinstance(round_robin, bool):
            raise ValueError(f'round_robin must be True or False, not'
                             f' {round_robin!r}')
        self.mailers = mailers
        self.relays = [relay_name(mailer) for mailer in mailers]
        self.retry_period = float(retry_period)
        self.round_robin = round_robin
        self.clock = clock
        self._lock = threading.Lock()
        self._skipped = {}  # index -> clock time its skipping ends
        self._turn = 0      # round robin: whose turn it is among those up
        self._local = threading.local()  # the 7.3 protocol's connection

    def __repr__(self):
        return f'<{type(self).__name__} {", ".join(self.relays)}>'

    # Choosing a relay.

    def _order(self, exclude=(), advance=False):
        """The indexes of the relays to try, in order: those up (in their
        order, or from the one whose turn it is), then those skipped, as a
        last resort."""
        with self._lock:
            now = self.clock()
            candidates = [i for i in range(len(self.mailers))
                          if i not in exclude]
            up = [i for i in candidates if self._skipped.get(i, now) <= now]
            if self.round_robin and up:
                k = self._turn % len(up)
                up = up[k:] + up[:k]
                if advance:
                    self._turn += 1
        return up + [i for i in candidates if i not in up]

    def next_relay(self):
        return self.relays[self._order()[0]]

    def skipped(self):
        with self._lock:
            now = self.clock()
            return {self.relays[i]: until - now
                    for i, until in sorted(self._skipped.items())
                    if until > now}

    def _skip(self, index, error):
        """The relay *index* failed with its own condition *error*."""
        with self._lock:
            now = self.clock()
            fresh = self._skipped.get(index, now) <= now
            self._skipped[index] = now + self.retry_period
        if fresh:
            log.warning('relay %s skipped for %g s: %s', self.relays[index],
                        self.retry_period, error)
        else:
            log.info('relay %s, skipped, failed again: %s',
                     self.relays[index], error)

    def _works(self, index):
        """The relay *index* took a connection."""
        with self._lock:
            back = self._skipped.pop(index, None) is not None
        if back:
            log.info('relay %s taken back', self.relays[index])

    def _open(self, cached, exclude=(), errors=()):
        """``(index, connection)``: a connection to the first relay that
        takes it, skipping those in *exclude*; *errors* are what relays
        tried already said.  Raises as `IFailoverMailer.connect` says."""
        errors = list(errors)
        for index in self._order(exclude, advance=True):
            mailer = self.mailers[index]
            try:
                connection = open_connection(mailer, cached=cached)
            except Exception as e:
                if not _skips(e):
                    # Turned away or "too fast": the sender slows down;
                    # anything else is a bug, not the relay's condition.
                    raise
                self._skip(index, e)
                errors.append((self.relays[index], e))
                continue
            self._works(index)
            if errors:
                log.info('connected through relay %s instead',
                         self.relays[index])
            else:
                log.debug('connected through relay %s', self.relays[index])
            return index, connection
        raise _none_took(errors) from errors[-1][1] if errors else None

    # IFailoverMailer

    def connect(self):
        connection = FailoverConnection(self, cached=False)
        connection.open()
        return connection

    def cached_connect(self):
        connection = FailoverConnection(self, cached=True)
        connection.open()
        return connection

    # The 7.3 protocol: vote() opens a connection that the next send() of
    # the same thread uses and closes; send() alone opens its own.

    def vote(self, fromaddr, toaddrs, message):
        self.abort()
        self._local.connection = self.connect()

    def send(self, fromaddr, toaddrs, message):
        connection = getattr(self._local, 'connection', None)
        self._local.connection = None
        if connection is None:
            connection = self.connect()
        with connection:
            refused = connection.send(fromaddr, toaddrs, message)
        if refused:
            log.warning('relay %s: %d recipient(s) refused', connection.relay,
                        len(refused))
        return refused

    def abort(self):
        connection = getattr(self._local, 'connection', None)
        self._local.connection = None
        if connection is not None:
            connection.close()


@implementer(IMailerConnection)
class FailoverConnection:
    """A connection of a `FailoverMailer`: to one relay at a time, named by
    ``relay``.  When that relay meets a condition of its own while
    answering a message (a used-up quota; settings refused on
    reconnecting), it is skipped and the message goes through another
    relay; any other failure is raised as it came."""

    def __init__(self, failover, cached=False):
        self.failover = failover
        self.cached = cached
        self._index = self._connection = None
        self.relay = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f'<FailoverConnection to {self.relay or "no relay yet"}>'

    @property
    def max_recipients(self):
        return getattr(self._connection, 'max_recipients', None)

    @max_recipients.setter
    def max_recipients(self, cap):
        # The cap of the relay used now; a switch forgets it with the
        # connection it was learnt on.
        if self._connection is not None and hasattr(self._connection,
                                                    'max_recipients'):
            self._connection.max_recipients = cap

    def open(self, exclude=(), errors=()):
        self._index, self._connection = self.failover._open(
            self.cached, exclude, errors)
        self.relay = self.failover.relays[self._index]

    def send(self, fromaddr, toaddrs, message):
        if self._connection is None:
            self.open()
        tried, errors = set(), []
        while True:
            try:
                return self._connection.send(fromaddr, toaddrs, message)
            except SKIPPED_AT_SEND as e:
                # No recipient got it (send raises only then), and no
                # message is to blame: it goes through another relay now.
                self.failover._skip(self._index, e)
                tried.add(self._index)
                errors.append((self.relay, e))
                self._drop()
                if len(tried) == len(self.failover.mailers):
                    raise
                self.open(tried, errors)  # raises when no other one works
            except MailDeliveryError as e:
                if e.code is None and not isinstance(
                        e, PermanentDeliveryError):
                    # No reply: the connection is lost (the relay may be
                    # down); the next message chooses a relay afresh.
                    self._drop()
                raise

    def _drop(self):
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # never raises (IMailerConnection.close)

    def close(self):
        self._drop()
