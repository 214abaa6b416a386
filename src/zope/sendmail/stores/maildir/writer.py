"""A message being written into a queue's ``tmp/``, and its commit.

A `MaildirMessageWriter` writes a file made exclusively in ``tmp/`` (mode
0600) and commits it into ``new/`` (or a given place) with one ``rename``,
so a reader never sees half a message.  Between the writing and the commit
-- the rest of the application's transaction -- whoever may write into
``tmp/`` (a user of a shared group) could put another file in its place,
to have it queued as the site's mail.  So the commit checks that the file
at its path is the one written, just before the rename and just after it,
by the identity of the descriptor the writer keeps (at most `keep_open`
writers of a process keep theirs, not to run out of descriptors in a big
transaction; past them, the device, inode, change time and size ``fstat``
gave when the writing ended stand for the file).  A file found in its
place is never moved into the queue; one moved there in the instant
between the check and the rename is set aside as ``.rejected-<name>``.
The message was committed: with its descriptor, the writer queues it all
the same, from a fresh copy; without, it cannot, and raises ``OSError``.
`replaced` says what happened, for the caller's log.
"""
import errno
import logging
import os
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IMaildirMessageWriter
from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import unique_name
from zope.sendmail.stores.maildir.safefiles import identity
from zope.sendmail.stores.maildir.safefiles import open_regular


log = logging.getLogger(__name__)

WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)
_kept = 0  # descriptors kept by closed writers of this process
_kept_lock = threading.Lock()


def new_message(queue_path, final_path=None):
    """A `MaildirMessageWriter` for a new file in the ``tmp/`` of the
    queue at *queue_path* (checked by its opener), which commits into
    *final_path*, or ``new/`` under its own name."""
    tmp = os.path.join(queue_path, 'tmp')
    while True:
        name = unique_name()
        path = os.path.join(tmp, name)
        try:
            fd = os.open(path, WRITE_FLAGS, 0o600)
        except FileExistsError:
            # Cannot happen with a sane clock and pid; a stale file
            # from an earlier boot is not ours to overwrite.
            continue
        return MaildirMessageWriter(fd, path, final_path or os.path.join(
            queue_path, 'new', name))


def fsync_path(path, flags=os.O_RDONLY):
    """Flush the file or directory at *path* to stable storage."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stamp(st):
    """What stands for a file once its descriptor is closed: the change
    time cannot be set by anyone, and moves whenever the file changes."""
    return st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


@implementer(IMaildirMessageWriter)
class MaildirMessageWriter:
    """A message being written into ``tmp/`` (the descriptor *fd* of the
    file *path*), committed to *final_path*; see the interface and the
    module.  ``replaced`` is None, or, after a commit that found another
    file in this one's place, what became of both (for a log line)."""

    keep_open = 64  # descriptors kept until the commit, per process

    def __init__(self, fd, path, final_path):
        # A raw descriptor: messages are written in one piece, so a
        # buffered file object would only add its own cost.
        self._fd = fd
        self.path = path
        self.final_path = final_path
        self._state = 'open'
        self._kept = False  # self._fd is counted in _kept
        self._stamp = None  # once the descriptor is closed
        self._copies = 0  # how many times the commit made a copy
        self._identity = None  # of the descriptor, once asked
        self.replaced = None

    def __repr__(self):
        return f'<MaildirMessageWriter {self._state} {self.path!r}>'

    def __del__(self):
        # A writer dropped without commit or abort (a data manager that
        # never finished) gives its descriptor back.
        try:
            self._release()
        except Exception:  # at interpreter exit: the system closes it
            pass

    def write(self, data):
        if self._state != 'open':
            raise ValueError(f'cannot write to a {self._state} message:'
                             f' {self.path}')
        if isinstance(data, str):
            data = data.encode('utf-8')
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def writelines(self, lines):
        for data in lines:
            self.write(data)

    def close(self):
        """End the writing.  The descriptor is kept for the commit's check
        while this process keeps fewer than `keep_open`."""
        global _kept
        if self._state != 'open':
            return
        self._state = 'closed'
        with _kept_lock:
            if _kept < self.keep_open:
                _kept += 1
                self._kept = True
                return
        self._stamp = _stamp(os.fstat(self._fd))
        self._release()

    def _release(self):
        global _kept
        fd, self._fd = getattr(self, '_fd', None), None
        if fd is None:
            return
        if self._kept:
            self._kept = False
            with _kept_lock:
                _kept -= 1
        os.close(fd)

    def _mine(self, st, renamed=False):
        """Whether *st* (an lstat result, or None) is the file written.
        A rename changes the change time: after it, what is left to
        compare without the descriptor is the inode and the size."""
        if st is None:
            return False
        if self._fd is not None:
            if self._identity is None:
                self._identity = identity(os.fstat(self._fd))
            return identity(st) == self._identity
        stamp = _stamp(st)
        return stamp[:2] + stamp[3:] == self._stamp[:2] + self._stamp[3:] \
            if renamed else stamp == self._stamp

    def sync(self):
        """Flush the data to stable storage (before the commit)."""
        if self._state == 'aborted':
            raise RuntimeError(f'cannot sync an aborted message: {self.path}')
        if self._fd is not None:
            os.fsync(self._fd)
        elif self._state != 'committed':
            fd, st = open_regular(self.path)
            try:
                if _stamp(st) != self._stamp:
                    raise OSError(errno.ESTALE, f'{self.path} is not the'
                                  f' file written: it was replaced')
                os.fsync(fd)
            finally:
                os.close(fd)

    def commit(self, mtime=None):
        """Move the file into its final place (see the interface); with
        *mtime*, set its modification time first, through the descriptor,
        so that it is never seen there without it."""
        if self._state == 'aborted':
            raise RuntimeError(
                f'cannot commit an aborted message: {self.path}')
        if self._state == 'committed':
            return
        if self._state == 'open':
            self._state = 'closed'  # never counted in _kept: no close()
        if mtime is not None:
            _utime(self._fd, self.path, mtime)
        if self._mine(_lstat(self.path)):
            os.rename(self.path, self.final_path)
            if self._mine(_lstat(self.final_path), renamed=True):
                self._state = 'committed'
                self._release()
                return
            why = self._set_aside()
        else:
            why = (f'{self.path} was not the file written when it was'
                   f' committed: another file was put in its place; it is'
                   f' left there, not queued')
        try:
            self._commit_copy(why, mtime)
        finally:
            self._release()

    def _set_aside(self):
        directory, name = os.path.split(self.final_path)
        aside = os.path.join(directory, REJECTED + name)
        try:
            os.rename(self.final_path, aside)
        except FileNotFoundError:
            # Removed meanwhile (by whoever put it there): not queued.
            pass
        return (f'another file was put in the place of {self.path} while'
                f' it was committed: it was moved to {self.final_path},'
                f' then set aside as {aside}, never to be sent')

    def _commit_copy(self, why, mtime):
        """The message was committed, but the file in its place was not
        it: queue a copy of what this writer wrote, if it can."""
        self._state = 'committed'
        if self._fd is None or self._copies >= 2:
            self.replaced = why + ('; the message written is lost' if
                                   self._fd is None else '; the message'
                                   ' written could not be queued')
            raise OSError(errno.ESTALE, self.replaced)
        path = os.path.join(os.path.dirname(self.path), unique_name())
        copy = MaildirMessageWriter(os.open(path, WRITE_FLAGS, 0o600), path,
                                    self.final_path)
        copy._copies = self._copies + 1
        try:
            _copy(self._fd, copy._fd)
            copy.sync()
            copy.commit(mtime)
        except OSError as e:
            copy.abort()
            self.replaced = f'{why}; {e.strerror or e}'
            raise OSError(errno.ESTALE, self.replaced) from None
        self.replaced = (f'{why}; the message written was queued as'
                         f' {self.final_path}')
        if copy.replaced:
            self.replaced += f' ({copy.replaced})'

    def abort(self):
        if self._state in ('committed', 'aborted'):
            return
        self._state = 'aborted'
        self._release()
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


def _utime(fd, path, mtime):
    """Set the mtime of the file *fd* (or of *path*, never through a
    link, if *fd* is None or the system cannot)."""
    if fd is not None and os.utime in os.supports_fd:
        os.utime(fd, (time.time(), mtime))
    else:
        os.utime(path, (time.time(), mtime), follow_symlinks=False)


def _copy(source, target):
    os.lseek(source, 0, os.SEEK_SET)
    while True:
        chunk = os.read(source, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view):]
