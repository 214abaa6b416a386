"""Whether a queue directory may be trusted: it, and its new/, cur/, tmp/.

Whoever may write into ``new/`` may queue forged mail, and whoever may put
a symbolic link in place of ``new/`` makes the processor rename (and
``zope-sendmail --purge-rejected`` delete) the files of another directory.
So a queue is used only when ``new/``, ``cur/`` and ``tmp/`` are
directories, not links, and when neither they nor the queue directory may
be written by anyone but their owner -- or, with *shared_group*, by their
owner and their group (users of one group sharing a queue), never by every
user.  The queue path itself may be a symbolic link (sites move their
queues so); only the subdirectories may not.  A queue owned by another
user is used, with one warning per process: a root cron job processing the
site's queue is common.  `check_queue_dirs` raises `UnsafeQueueError`
naming the directory, why, and what to do.
"""
import logging
import os
import stat
import threading

from zope.sendmail.interfaces import QueueError
from zope.sendmail.interfaces import UnsafeQueueError


log = logging.getLogger(__name__)

SUBDIRS = ('tmp', 'new', 'cur')

# The queues whose foreign owner was reported: one warning per queue and
# process, however many times it is opened (by the delivery, the ZCML
# action, the processor thread).  Log lines only, never a decision.
_reported_owners = set()
_reported_lock = threading.Lock()


def _refuse(path, why, fix):
    raise UnsafeQueueError(f'refusing to use the mail queue {path!r}: {why};'
                           f' {fix}')


def check_queue_dirs(path, shared_group=False):
    """Raise `UnsafeQueueError` if the queue at *path* is not safe to use
    (see the module); missing subdirectories are not this check's concern.
    """
    found = [('', os.stat(path))]  # the queue path may be a link
    for sub in SUBDIRS:
        try:
            st = os.lstat(os.path.join(path, sub))
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            _refuse(path, f'{sub}/ is a symbolic link',
                    f'{sub}/ must be a directory of the queue itself, or the'
                    f' processor would move and delete the files the link'
                    f' leads to')
        if stat.S_ISDIR(st.st_mode):
            found.append((sub + '/', st))
    if os.name == 'nt':
        return  # no POSIX modes nor owners to check
    for sub, st in found:
        what = sub or 'the queue directory'
        mode = stat.S_IMODE(st.st_mode)
        if mode & stat.S_IWOTH:
            _refuse(path, f'{what} is writable by every user (mode'
                          f' {mode:04o}): anyone could queue forged mail',
                    'make it writable by its owner only'
                    ' (chmod go-w)')
        if mode & stat.S_IWGRP and not shared_group:
            _refuse(path, f'{what} is writable by its group (mode'
                          f' {mode:04o})',
                    'make it writable by its owner only (chmod g-w), or,'
                    ' if the group shares the queue, allow it with the'
                    ' shared_group setting (sharedGroup in ZCML,'
                    ' --shared-group)')
    _warn_owner(path, {st.st_uid for sub, st in found})


def _warn_owner(path, owners):
    me = os.geteuid()
    others = sorted(owners - {me})
    if not others:
        return
    key = (os.path.realpath(path), me)
    with _reported_lock:
        if key in _reported_owners:
            return
        _reported_owners.add(key)
    log.warning('mail queue %s belongs to another user (uid %s), not to'
                ' this process (uid %d): using it all the same', path,
                ', '.join(map(str, others)), me)


def check_writable(path):
    """Raise `QueueError` unless this process may write into the queue at
    *path* (its ``tmp/``, ``new/`` and ``cur/``): what a site's
    configuration checks before a delivery ever commits to it."""
    for sub in SUBDIRS:
        if not os.access(os.path.join(path, sub), os.W_OK | os.X_OK):
            raise QueueError(f'{sub}/ is not writable by this process')
