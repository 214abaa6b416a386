"""Lasting conditions of a queue's entries, each logged once.

A FIFO in ``new/``, or a claim file a processor cannot open, stays until an
operator acts; a processor that said so at every pass (every few seconds)
would drown its log.  A `Notices` logs a condition of an entry the first
time it is seen, and forgets those of entries that are gone (`retain`), so
that it holds no more than what is odd in the queue now, and a condition
that comes back is logged again.
"""
import contextlib
import logging
import os
import threading

from zope.interface import implementer

from zope.sendmail.interfaces import INotices
from zope.sendmail.stores.maildir.safefiles import kind_of


@implementer(INotices)
class Notices:
    """What was logged through *logger* about which entry; see
    `INotices`."""

    def __init__(self, logger):
        self.logger = logger
        self._seen = set()  # (path, topic)
        self._lock = threading.Lock()  # the connection threads of a pass

    def __repr__(self):
        return f'<Notices {len(self._seen)} logged>'

    def once(self, path, topic, level, message, *args):
        """Log *message* % *args* at *level*, unless it was logged for
        *path* and *topic* already; return whether it was logged now."""
        with self._lock:
            if (path, topic) in self._seen:
                return False
            self._seen.add((path, topic))
        self.logger.log(level, message, *args)
        return True

    def retain(self, paths):
        """Forget what was logged about entries not among *paths*."""
        with self._lock:
            self._seen = {key for key in self._seen if key[0] in paths}


def log_once(notices, logger, path, topic, level, message, *args):
    """Log through *notices* when there is one; else (a caller keeping no
    memory, such as a single claim) through *logger*."""
    if notices is not None:
        return notices.once(path, topic, level, message, *args)
    logger.log(level, message, *args)
    return True


def skip_odd(notices, queue_path, sub, entry):
    """Whether *entry* (an ``os.DirEntry`` of the queue's *sub*) is no
    message: not a regular file (a FIFO, a link), never to be opened; if
    so, said through *notices* once, not at every pass."""
    if entry.is_file(follow_symlinks=False):
        return False
    with contextlib.suppress(FileNotFoundError):  # removed meanwhile
        notices.once(
            entry.path, 'not regular', logging.ERROR, 'queue %s: skipped %r:'
            ' it is %s, not a message; it is never read (remove it)',
            queue_path, os.path.join(sub, entry.name),
            kind_of(entry.stat(follow_symlinks=False).st_mode))
    return True
