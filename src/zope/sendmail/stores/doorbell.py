"""Wake-ups of the processors waiting on a queue, within one process.

A processor waits between passes on the `Waiter` its store gave it
(`IQueueStore.waiter`); a delivery that commits mail to the queue rings the
queue's doorbell (`ring`, by the store's key), so that the waiting
processors of this process start a pass at once instead of at their next
poll.  A queue on a server may add its own notifications (from other
hosts) by waking the same waiters.  Waiters are held weakly: a processor
that is gone is forgotten without a word.
"""
import threading
import weakref

from zope.interface import implementer

from zope.sendmail.interfaces import IQueueWaiter


_lock = threading.Lock()
_waiters = {}  # key -> WeakSet of the open Waiters of that queue


@implementer(IQueueWaiter)
class Waiter:
    """What one processor of the queue *key* waits on; see
    `IQueueWaiter`."""

    def __init__(self, key):
        self.key = key
        self._event = threading.Event()
        with _lock:
            _waiters.setdefault(key, weakref.WeakSet()).add(self)

    def __repr__(self):
        return f'<Waiter {self.key!r}>'

    def wait(self, timeout):
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def wake(self):
        self._event.set()

    def close(self):
        with _lock:
            waiters = _waiters.get(self.key)
            if waiters is not None:
                waiters.discard(self)
                if not waiters:
                    del _waiters[self.key]


def ring(key):
    """Wake every waiter of the queue *key* in this process."""
    if not _waiters:
        return  # nobody waits in this process: the common case, and cheap
    with _lock:
        waiters = list(_waiters.get(key, ()))
    for waiter in waiters:
        waiter.wake()
