"""The facts of a queue for scripts and monitoring, read in bounded time.

`read_status` asks a queue's store for its status (`IQueueStore.status`)
in a thread of its own and gives up after a timeout, so that a hung
network mount or a database that stops answering never hangs a monitoring
system's check: `StatusTimeout` says so.  `facts` turns a status into a
dict of plain values with stable keys (``zope-sendmail --status --json``;
documented in ``operating.txt``); every text in it is escaped.
"""
import threading

from zope.sendmail.display import printable
from zope.sendmail.stores import open_store


#: The version of the keys of `facts`: raised when one changes meaning.
FORMAT = 1

STATES = ('sending', 'queued', 'deferred', 'rejected')


class StatusTimeout(Exception):
    """The queue did not answer in time."""


def read_status(queue, timeout, opener=open_store):
    """The `IQueueStatus` of *queue* (a path or a URL, an existing queue)
    and the store's clock at that moment, ``(status, now, name)``, read
    within *timeout* seconds.  Raises what opening or asking the store
    raised (`QueueError`, `OSError`), or `StatusTimeout`.

    The store is opened, asked and closed in a daemon thread: a store
    stuck in the kernel (a hard NFS mount) cannot be interrupted, so the
    caller stops waiting for it and the thread is left to the process's
    exit."""
    outcome = {}

    def ask():
        try:
            store = opener(queue, must_exist=True, create=False)
            try:
                outcome['value'] = (store.status(), store.now(), store.name)
            finally:
                store.close()
        except BaseException as e:  # handed to the caller, who judges it
            outcome['error'] = e

    thread = threading.Thread(target=ask, daemon=True,
                              name='zope.sendmail status reader')
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StatusTimeout(f'no answer within {timeout:g} s')
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def oldest_age(status, now):
    """Seconds since the oldest message not set aside was queued (0 for
    a clock that went back), or None when there is none."""
    if status.oldest is None:
        return None
    return max(0.0, now - status.oldest)


def facts(name, status, now):
    """The facts of the queue *name* (its `IQueueStore.name`) whose
    `IQueueStatus` is *status*, read at *now* (the store's clock): a dict
    for ``json.dumps``."""
    counts = {state: int(status.counts.get(state, 0)) for state in STATES}
    return {
        'format': FORMAT,
        'queue': printable(name),
        'now': now,
        'counts': counts,
        'total': sum(counts.values()),
        'waiting': int(status.waiting),
        'next_attempt': status.next_attempt,
        'oldest': status.oldest,
        'oldest_age': oldest_age(status, now),
        'others': int(status.others),
        'details': {printable(label): printable(text)
                    for label, text in status.details},
    }
