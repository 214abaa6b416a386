"""The queue processor threads running in this process: the one registry.

A `QueueProcessorThread` is here from its ``start`` until its loop ends
or it is stopped, under its queue's key (`IQueueStore.key`).
`zope.sendmail.startup` asks it which queues have a running thread (and
starts one only for those that have none, however the others were
started: by the application's startup, by ``zope-sendmail --daemon``, by
the application itself), lists them and stops them at exit.  Wake-ups do
not go through here: a commit wakes the processors waiting on its queue
through their store (`IQueueStore.waiter`).
"""
import threading


_lock = threading.Lock()
_threads = {}  # running thread -> its queue's key, in the order started


def add(thread, key):
    """*thread* runs, processing the queue *key*."""
    with _lock:
        _threads[thread] = key


def discard(thread):
    """*thread* has ended (or is ending); harmless when it is not here."""
    with _lock:
        _threads.pop(thread, None)


def running(key=None):
    """The threads running (of the queue *key*, or all), in the order they
    were started."""
    with _lock:
        threads = [t for t, k in _threads.items() if key in (None, k)]
    return [t for t in threads if t.is_alive()]
