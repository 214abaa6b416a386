"""The Maildir queue on disk: ``tmp/``, ``new/`` and ``cur/``.

A writer (`zope.sendmail.stores.maildir.writer`) creates its file in ``tmp/``
(exclusively, mode 0600, under a name unique across processes and hosts)
and moves it into ``new/`` with one ``rename`` when it commits, so a reader
never sees half a message.  For durability the file's data is synced before
the move, and the ``new/`` directory after it; the second sync is the
caller's to batch (see `Maildir.sync_new`), because one directory sync
covers any number of renames.  Everything made here is private whatever the
umask: files 0600, created exclusively, and directories 0700
(`make_private_dirs`); a queue that others could tamper with is refused
(`queuedirs`).  Only regular files are messages: whatever
else lies in ``new/`` or ``cur/`` (a FIFO, a symbolic link) is not listed.
"""
import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor

from zope.interface import implementer
from zope.interface import provider

from zope.sendmail.interfaces import IMaildir
from zope.sendmail.interfaces import IMaildirFactory
from zope.sendmail.stores.maildir.names import MESSAGE_DIRS
from zope.sendmail.stores.maildir.names import is_message
from zope.sendmail.stores.maildir.names import listing
from zope.sendmail.stores.maildir.names import queued_order
from zope.sendmail.stores.maildir.writer import MaildirMessageWriter
from zope.sendmail.stores.maildir.writer import fsync_path
from zope.sendmail.stores.maildir.writer import new_message
from zope.sendmail.stores.maildir.queuedirs import SUBDIRS
from zope.sendmail.stores.maildir.queuedirs import check_queue_dirs


log = logging.getLogger(__name__)

# What a freshly made file system holds: a directory still "empty".
_EMPTY = {'lost+found'}


def _mtime(path):
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return 0.0  # gone meanwhile; where it sorts no longer matters


def make_private_dirs(path):
    """Make the directory *path* and its missing parents, each 0700
    whatever the umask: anyone who may write a queue directory may swap
    in a ``new/`` of forged mail."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip(os.sep))
    if parent and parent != path:
        make_private_dirs(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return  # made by another process meanwhile: its mode is its own
    os.chmod(path, 0o700)  # a umask may have taken the owner's bits too


@provider(IMaildirFactory)
@implementer(IMaildir)
class Maildir:
    """A Maildir folder at *path*; see `IMaildirFactory` for *create* and
    *shared_group*."""

    def __init__(self, path, create=False, shared_group=False):
        self.path = path
        self.shared_group = shared_group
        if os.path.isdir(path):
            # Before anything is made: a link in place of new/ is not a
            # missing new/.
            check_queue_dirs(path, shared_group)
        missing = [d for d in SUBDIRS
                   if not os.path.isdir(os.path.join(path, d))]
        if not missing:
            return
        if create and not os.path.lexists(path):
            make_private_dirs(path)
        elif create and os.path.isdir(path):
            # Only an empty directory (a fresh volume, say) or one we
            # began making becomes a queue, never one holding other files.
            others = sorted(set(os.listdir(path)) - set(SUBDIRS) - _EMPTY)
            if others:
                raise ValueError(
                    f'{path!r} is not a Maildir and not empty (it holds'
                    f' {", ".join(others[:3])}{", ..." * (len(others) > 3)}):'
                    f' refusing to make it a mail queue')
        elif create:
            raise ValueError(f'{path!r} is not a directory: cannot make a'
                             f' Maildir there')
        else:
            raise ValueError(
                f'{path!r} is not a Maildir: it lacks the'
                f' {"/, ".join(missing)}/ subdirector'
                f'{"y" if len(missing) == 1 else "ies"}')
        for d in missing:
            make_private_dirs(os.path.join(path, d))

    def __repr__(self):
        return f'<Maildir {self.path!r}>'

    def __iter__(self):
        found = {}
        for sub, entry in listing(self.path):
            # A FIFO or a link is no message (the processor says so in its
            # log, once).
            if is_message(entry.name) and entry.is_file(
                    follow_symlinks=False):
                found.setdefault(sub, []).append(entry.path)
        for sub in MESSAGE_DIRS:
            paths = found.get(sub, ())
            yield from sorted(paths, key=lambda path: queued_order(
                os.path.basename(path), lambda: _mtime(path)))

    def newMessage(self):
        """Start a new message in ``tmp/``; see `IMaildirMessageWriter`."""
        return new_message(self.path)

    def cleanup(self, max_age=36 * 60 * 60, now=None):
        """Remove files a crashed writer left in ``tmp/`` more than
        *max_age* seconds ago (the Maildir rule is 36 hours); return their
        number."""
        now = time.time() if now is None else now
        removed = 0
        tmp = os.path.join(self.path, 'tmp')
        for entry in os.scandir(tmp):
            try:
                # Links are removed, never followed; a directory is not a
                # writer's, and left alone.
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime > max_age and \
                        not stat.S_ISDIR(st.st_mode):
                    os.unlink(entry.path)
                    removed += 1
                    log.warning('removed %r, left in tmp/ by a writer that'
                                ' died', entry.path)
            except FileNotFoundError:
                continue  # committed or removed meanwhile
            except OSError as e:
                # One odd entry must not stop the housekeeping (nor the
                # pass after it); the operator sees it here.
                log.warning('housekeeping: cannot remove %r: %s',
                            entry.path, e.strerror)
        return removed

    def sync_new(self):
        """Make the renames into ``new/`` durable: one directory sync,
        whatever their number."""
        fsync_path(os.path.join(self.path, 'new'))


def sync_all(writers, parallel=8, threshold=32):
    """Sync the files of *writers*; a batch of *threshold* or more with
    *parallel* threads, as fsync releases the GIL and a disk completes
    concurrent flushes together much faster than one after the other."""
    if len(writers) < threshold or parallel <= 1:
        for writer in writers:
            writer.sync()
        return
    with ThreadPoolExecutor(parallel, 'zope.sendmail sync') as pool:
        for _ in pool.map(MaildirMessageWriter.sync, writers):
            pass  # iterating re-raises the first failure
