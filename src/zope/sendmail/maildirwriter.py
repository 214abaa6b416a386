"""A message being written into a queue's ``tmp/``, and its commit.

A `MaildirMessageWriter` writes a file made exclusively in ``tmp/`` (mode
0600, under a name unique across processes and hosts) and commits it into
``new/`` (or a given place) with one ``rename``, so a reader never sees
half a message.  `zope.sendmail.maildir` hands them out (and re-exports
them from their old home); `new_message` makes one for any queue.
"""
import errno
import logging
import os

from zope.interface import implementer

from zope.sendmail.maildir_interfaces import IMaildirMessageWriter
from zope.sendmail.maildirnames import unique_name


log = logging.getLogger(__name__)

WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(
    os, 'O_CLOEXEC', 0)


def new_message(queue_path, final_path=None):
    """A `MaildirMessageWriter` for a new file in the ``tmp/`` of the
    queue at *queue_path*, which commits into *final_path*, or ``new/``
    under its own name."""
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
