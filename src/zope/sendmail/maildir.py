"""The Maildir queue on disk: ``tmp/``, ``new/`` and ``cur/``.

A writer creates its file in ``tmp/`` (exclusively, mode 0600, under a name
unique across processes and hosts) and moves it into ``new/`` with one
``rename`` when it commits, so a reader never sees half a message.  For
durability the file's data is synced before the move, and the ``new/``
directory after it; the second sync is the caller's to batch (see
`Maildir.sync_new`), because one directory sync covers any number of renames.
Everything made here is private whatever the umask: files 0600, created
exclusively, and directories 0700 (`make_private_dirs`).
"""
import errno
import itertools
import logging
import os
import re
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from zope.interface import implementer
from zope.interface import provider

from zope.sendmail.interfaces import IMaildir
from zope.sendmail.interfaces import IMaildirFactory
from zope.sendmail.interfaces import IMaildirMessageWriter


log = logging.getLogger(__name__)

SUBDIRS = ('tmp', 'new', 'cur')
# What a freshly made file system holds: a directory still "empty".
_EMPTY = {'lost+found'}

_counter = itertools.count()
_counter_lock = threading.Lock()


def _safe_hostname():
    # The Maildir convention escapes the characters that would break the
    # name's structure.
    return socket.gethostname().replace('/', r'\057').replace(':', r'\072')


def unique_name():
    """A file name no other writer can choose: time, pid, a per-process
    counter, random bits and the host name.  The microseconds are
    zero-padded, so that names sort in the order they were made."""
    now = time.time()
    with _counter_lock:
        count = next(_counter)
    return '%d.M%06dP%dQ%dR%s.%s' % (
        now, (now % 1) * 1e6, os.getpid(), count, secrets.token_hex(4),
        _safe_hostname())


# Every Maildir name starts with the seconds it was made at; this
# package's names then say the microseconds (``.M123P``, unpadded before
# 8.0), 7.3's do not (``SECONDS.PID.HOST.RANDOM``).
_NAME_TIME = re.compile(r'(\d+)(?:[.]M(\d{1,6})P)?')


def queued_order(name, mtime):
    """The sort key of the queue file *name* that puts files in the order
    they were queued: the time in the name; for a name saying only the
    second (7.3's), the file's mtime when it lies within that second.
    *mtime* is called, without arguments, only for such names."""
    match = _NAME_TIME.match(name)
    if match is None:
        return (mtime(), name)  # not a Maildir name: its mtime is all
    seconds, micros = match.groups()
    queued = int(seconds)
    if micros is not None:
        return (queued + int(micros) / 1e6, name)
    written = mtime()
    if queued <= written < queued + 1:
        return (written, name)
    return (float(queued), name)


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0  # gone meanwhile; where it sorts no longer matters


def fsync_path(path, flags=os.O_RDONLY):
    """Flush the file or directory at *path* to stable storage."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """A Maildir folder at *path*; see `IMaildirFactory` for *create*."""

    def __init__(self, path, create=False):
        self.path = path
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
        for subdir in ('new', 'cur'):
            directory = os.path.join(self.path, subdir)
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                # Removed under our feet (an operator cleaning up):
                # nothing to list, and the next call sees it again.
                continue
            names = [name for name in names if not name.startswith('.')]
            paths = {name: os.path.join(directory, name) for name in names}
            for name in sorted(names, key=lambda name: queued_order(
                    name, lambda: _mtime(paths[name]))):
                yield paths[name]

    def newMessage(self):
        """Start a new message in ``tmp/``; see `IMaildirMessageWriter`."""
        tmp = os.path.join(self.path, 'tmp')
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(
            os, 'O_CLOEXEC', 0)
        while True:
            name = unique_name()
            path = os.path.join(tmp, name)
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                # Cannot happen with a sane clock and pid; a stale file
                # from an earlier boot is not ours to overwrite.
                continue
            return MaildirMessageWriter(
                fd, path, os.path.join(self.path, 'new', name))

    def cleanup(self, max_age=36 * 60 * 60, now=None):
        """Remove files a crashed writer left in ``tmp/`` more than
        *max_age* seconds ago (the Maildir rule is 36 hours); return their
        number."""
        now = time.time() if now is None else now
        removed = 0
        tmp = os.path.join(self.path, 'tmp')
        for entry in os.scandir(tmp):
            try:
                if now - entry.stat().st_mtime > max_age:
                    os.unlink(entry.path)
                    removed += 1
                    log.warning('removed %s, left in tmp/ by a writer that'
                                ' died', entry.path)
            except FileNotFoundError:
                continue  # committed or removed meanwhile
        return removed

    def sync_new(self):
        """Make the renames into ``new/`` durable: one directory sync,
        whatever their number."""
        fsync_path(os.path.join(self.path, 'new'))


@implementer(IMaildirMessageWriter)
class MaildirMessageWriter:
    """A message being written into ``tmp/``; see the interface."""

    def __init__(self, fd, path, final_path):
        # A raw descriptor: messages are written in one piece, so a
        # buffered file object would only add its own cost.
        self._fd = fd
        self.path = path
        self.final_path = final_path
        self._state = 'open'

    def __repr__(self):
        return f'<MaildirMessageWriter {self._state} {self.path!r}>'

    def write(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def writelines(self, lines):
        for data in lines:
            self.write(data)

    def close(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._state == 'open':
            self._state = 'closed'

    def sync(self):
        """Flush the data to stable storage (before the commit)."""
        if self._state == 'aborted':
            raise RuntimeError(f'cannot sync an aborted message: {self.path}')
        if self._fd is not None:
            os.fsync(self._fd)
        elif self._state != 'committed':
            fsync_path(self.path)

    def commit(self):
        if self._state == 'aborted':
            raise RuntimeError(
                f'cannot commit an aborted message: {self.path}')
        if self._state == 'committed':
            return
        self.close()
        os.rename(self.path, self.final_path)
        self._state = 'committed'

    def abort(self):
        if self._state in ('committed', 'aborted'):
            return
        self.close()
        self._state = 'aborted'
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            # Already gone (a tmp/ cleaner ran): the goal is reached.
            pass
        except OSError as e:
            # Leaving the file in tmp/ is harmless: readers never look
            # there, and stale tmp/ files are cleaned up later.
            log.warning('could not remove aborted message %s: %s',
                        self.path, os.strerror(e.errno or errno.EIO))


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
