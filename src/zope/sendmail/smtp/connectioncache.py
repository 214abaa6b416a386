"""A connection to the relay kept open between transactions.

A direct delivery sends the message or two of each transaction while it
commits; opening a connection for each (TCP, TLS, AUTH) costs more than
sending.  `ConnectionCache` keeps one idle connection of a mailer for the
next transaction, as Postfix's ``smtp_connection_cache_on_demand`` does:
`acquire` hands it out, to one user at a time, or opens a new one; closing
what it handed out gives the connection back, unless anything failed on it
(then it is closed).  An idle connection is closed after ``idle`` seconds
(2 by default, Postfix's ``smtp_connection_cache_time_limit``) by one
reaper thread for all caches, and at interpreter exit; a forked child
forgets the parent's.  A relay that closed the idle connection first is
reconnected transparently at the next MAIL (see `SMTPConnection`).
"""
import atexit
import logging
import os
import threading
import time
import weakref

from zope.interface import implementer

from zope.sendmail.interfaces import IMailerConnection
from zope.sendmail.interfaces import IConnectionCache


log = logging.getLogger(__name__)

#: Seconds the reaper thread waits, with no idle connection left to watch,
#: for one to come back before it ends.
LINGER = 10.0


@implementer(IConnectionCache)
class ConnectionCache:
    """The idle connection of one mailer; see the module and
    `IConnectionCache`.  *connect* opens a connection (``mailer.connect``);
    *clock* is monotonic."""

    def __init__(self, connect, idle=2.0, clock=time.monotonic):
        if not idle > 0:
            raise ValueError(f'idle must be positive, not {idle!r}')
        self.connect = connect
        self.idle = idle
        self.clock = clock
        self._lock = threading.Lock()
        # The idle connection, in a list the finalizer can hold without
        # holding the cache: a cache dropped with its mailer closes it.
        self._slot = [None]
        self._expires = None
        weakref.finalize(self, _close_slot, self._slot)

    def __repr__(self):
        state = 'empty' if self._slot[0] is None else 'holding one'
        return f'<ConnectionCache {state}, idle {self.idle:g} s>'

    def acquire(self):
        with self._lock:
            connection, self._slot[0] = self._slot[0], None
            fresh = connection is not None and self.clock() < self._expires
        if connection is not None and not fresh:
            connection.close()
            connection = None
        if connection is None:
            connection = self.connect()
        return CachedConnection(self, connection)

    def _give_back(self, connection):
        with self._lock:
            old, self._slot[0] = self._slot[0], connection
            self._expires = self.clock() + self.idle
        if old is not None:
            old.close()  # one idle connection is enough
        _reaper.watch(self)

    def expire(self):
        with self._lock:
            connection = self._slot[0]
            if connection is None:
                return None
            if self.clock() < self._expires:
                return self._expires
            self._slot[0] = None
        connection.close()
        return None

    def clear(self):
        with self._lock:
            connection, self._slot[0] = self._slot[0], None
        if connection is not None:
            connection.close()
            _reaper.wake()  # it may have nothing left to watch

    def _forget(self):
        # In a forked child: the socket is the parent's too, so no QUIT.
        self._lock = threading.Lock()
        self._slot[0] = None


def _close_slot(slot):
    connection, slot[0] = slot[0], None
    if connection is not None:
        connection.close()  # never raises (IMailerConnection.close)


@implementer(IMailerConnection)
class CachedConnection:
    """A connection handed out by a `ConnectionCache`: ``close()`` gives
    it back, unless a ``send`` failed on it."""

    def __init__(self, cache, connection):
        self._cache = cache
        self._connection = connection
        self._failed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def relay(self):
        return getattr(self._connection, 'relay', None)

    @property
    def max_recipients(self):
        return getattr(self._connection, 'max_recipients', None)

    @max_recipients.setter
    def max_recipients(self, cap):
        self._connection.max_recipients = cap

    def send(self, fromaddr, toaddrs, message):
        try:
            return self._connection.send(fromaddr, toaddrs, message)
        except BaseException:
            # Whatever state the conversation is in, nobody inherits it.
            self._failed = True
            raise

    def close(self):
        cache, self._cache = self._cache, None
        if cache is None:
            return
        if self._failed:
            self._connection.close()
        else:
            cache._give_back(self._connection)


class _Reaper:
    """The thread closing idle connections when their time is up."""

    def __init__(self):
        self.caches = weakref.WeakSet()
        self.cond = threading.Condition()
        self.thread = None
        self.changed = self.closing = False

    def watch(self, cache):
        with self.cond:
            self.caches.add(cache)
            self.changed = True
            if self.thread is None:
                self.closing = False
                self.thread = threading.Thread(
                    target=self._run, daemon=True,
                    name='zope.sendmail connection cache')
                self.thread.start()
            self.cond.notify()

    def _run(self):
        while True:
            with self.cond:
                self.changed = False
                caches = list(self.caches)
            deadlines = []
            for cache in caches:  # closing (QUIT) outside the lock
                try:
                    deadline = cache.expire()
                except Exception:
                    # A close that failed has closed what it could; the
                    # reaper must go on for the other caches.
                    log.exception('closing an idle connection failed')
                    deadline = None
                if deadline is None:
                    with self.cond:
                        self.caches.discard(cache)
                else:
                    deadlines.append(deadline)
            with self.cond:
                if self.changed:
                    continue  # a connection came back meanwhile
                if not deadlines:
                    # Nothing idle, for now: a user is likely to give one
                    # back soon; end only after LINGER seconds without.
                    if not self.closing:
                        self.cond.wait(LINGER)
                    if self.changed and not self.closing:
                        continue
                    self.thread = None
                    return
                self.cond.wait(max(0.01, min(deadlines) - time.monotonic()))

    def wake(self):
        with self.cond:
            self.changed = True
            self.cond.notify()

    def join(self, timeout):
        with self.cond:
            thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close_all(self):
        with self.cond:
            self.closing = True  # the thread ends without lingering
            self.cond.notify()
        for cache in list(self.caches):
            cache.clear()

    def forget_all(self):
        self.cond = threading.Condition()
        self.thread = None
        for cache in list(self.caches):
            cache._forget()
        self.caches = weakref.WeakSet()


_reaper = _Reaper()
# QUIT to every idle connection at exit, rather than a dropped socket.
atexit.register(_reaper.close_all)
if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_reaper.forget_all)


def clear_all(timeout=5.0):
    """Close every idle connection and wait (at most *timeout* seconds)
    for the reaper thread to end; whether it has.  For tests, which must
    leave no connection nor thread behind."""
    _reaper.close_all()
    return _reaper.join(timeout)


try:
    from zope.testing.cleanup import addCleanUp
except ImportError:  # zope.testing is for tests only
    pass
else:
    # Tests that clean up (zope.testing.cleanup.cleanUp) leave no thread.
    addCleanUp(clear_all)
