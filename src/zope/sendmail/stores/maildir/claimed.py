"""A claimed queue message: what its processor reads and does with it.

`claim` hands out a `Claim` for a message ``X`` once it holds
it; the claim keeps the message open, as the regular file it checked when
it claimed it (`safefiles`), so that what is read and sent is
that file, whatever is put at its path meanwhile.  The processor then
completes it (sent), moves it aside as ``.rejected-X`` with ``.reason-X``,
or defers it into ``cur/`` with ``.retry-X``; or releases it untouched
(the names of these files: `zope.sendmail.stores.maildir.names`).
"""
import logging
import os
import time

from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.privatefiles import write_private
from zope.sendmail.stores.maildir.safefiles import owns
from zope.sendmail.stores.maildir.safefiles import read_fd
from zope.sendmail.stores.maildir.safefiles import read_regular
from zope.sendmail.stores.maildir.safefiles import remove
from zope.sendmail.stores.maildir.sidefiles import sidecar
from zope.sendmail.stores.maildir.sidefiles import write_reason
from zope.sendmail.stores.maildir.sidefiles import write_retry


log = logging.getLogger(__name__)


class Claim:
    """The right to send (and then dispose of) the message at ``path``;
    *message* is the descriptor of its file, opened and checked by the
    claim (None: read from ``path``, checked then)."""

    def __init__(self, path, fd, lock_path, sending_path, lock_identity,
                 message=None):
        self.path = path
        self.directory, self.name = os.path.split(path)
        self._fd = fd
        self._lock_path = lock_path
        self._lock_identity = lock_identity
        self._sending = sending_path
        self._linked = None  # (device, inode) of .sending-X once linked
        self._message = message

    def __repr__(self):
        state = 'released' if self._fd is None else 'held'
        return f'<Claim {state} {self.path}>'

    @property
    def held(self):
        return self._fd is not None

    def sidecar(self, prefix, name=None):
        """The path of a dot-file beside the message (``.retry-X``...)."""
        return sidecar(self.path, prefix, name)

    def read(self):
        """The message file's bytes, as many as its size says."""
        if self._message is None:
            return read_regular(self.path)
        return read_fd(self._message, os.fstat(self._message).st_size)

    def stat(self):
        if self._message is None:
            return os.lstat(self.path)
        return os.fstat(self._message)

    def due(self, now):
        """Whether the message is due at *now*: always in ``new/``; in
        ``cur/``, by the mtime of the file as opened by the claim, after
        its lock: a listing's cached one (NFS) may predate a retry time
        another processor set."""
        if os.path.basename(self.directory) != 'cur':
            return True
        try:
            return self.stat().st_mtime <= now
        except FileNotFoundError:
            return False  # sent by another processor meanwhile

    def complete(self):
        """The message was delivered: remove it (and its bookkeeping)."""
        remove(self.path)
        if os.path.basename(self.directory) == 'cur':
            remove(self.sidecar(RETRY))  # only deferred messages have one
        self.release()

    def move_aside(self, reason):
        """Set the message aside as ``.rejected-X``, never to be retried,
        with *reason* in ``.reason-X`` for the operator."""
        write_reason(self.path, reason)
        os.rename(self.path, self.sidecar(REJECTED))
        remove(self.sidecar(RETRY))
        self.release()

    def defer(self, next_attempt, retry_data, message=None):
        """Keep the message for a later attempt, at *next_attempt* (a
        timestamp, recorded as the file's mtime), in ``cur/``.

        *retry_data* goes to ``.retry-X``; *message* (bytes), when given,
        replaces the file's contents (fewer recipients left).
        """
        cur = os.path.join(os.path.dirname(self.directory), 'cur')
        target = os.path.join(cur, self.name)
        write_retry(cur, self.name, retry_data)
        # The due time is set before the file appears in cur/, so that no
        # other processor finds it due in between.
        if message is not None:
            writer = write_private(os.path.dirname(self.directory), message,
                                   target)
            writer.commit(mtime=next_attempt)
            if writer.replaced:
                log.error('deferring %s: %s', self.path, writer.replaced)
        else:
            os.utime(self._message if self._message is not None and
                     os.utime in os.supports_fd else self.path,
                     (time.time(), next_attempt))
            os.rename(self.path, target)
        if target != self.path:
            if message is not None:
                remove(self.path)
            remove(self.sidecar(RETRY))
        self.release()

    def release(self):
        """Give up the claim, leaving the message where it is; return None.
        Only what is still this claim's own is removed: a holder that lost
        its claim (on NFS, after a network cut longer than the lease) must
        not remove the files of the next holder."""
        self._close_message()
        if self._fd is None:
            return
        try:
            if owns(self._lock_path, self._lock_identity):
                if self._linked and owns(self._sending, self._linked):
                    remove(self._sending)
                # The lock file goes before the lock: whoever opens the old
                # file afterwards finds it is not the one at the path.
                remove(self._lock_path)
            else:
                log.warning('the claim on %s was taken over meanwhile; its'
                            ' files are left to the new holder', self.path)
        except OSError as e:
            # The next pass or the housekeeping cleans up what is left.
            log.warning('cannot release the claim on %s: %s', self.path, e)
        finally:
            os.close(self._fd)
            self._fd = None

    def _close_message(self):
        fd, self._message = self._message, None
        if fd is not None:
            os.close(fd)
