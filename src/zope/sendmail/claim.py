"""Claims: which queue processor may send which queued message.

A queued message ``new/X`` (or ``cur/X``) is sent by the processor that
holds its claim, and by no other: not another thread, not another process,
not a zope.sendmail 7.3 ``zope-sendmail`` working on the same queue.  A
claim is two things beside the message, both dot-files that no reader takes
for a message::

    .claim-X     an empty lock file, flock()ed by the claiming processor;
                 the kernel drops the lock when that process dies
    .sending-X   a hard link to X: the claim 7.3 processors make and respect

    create .claim-X, or open it if it exists (left by a dead processor
             |   of ours, or held by a live one)
             v
    flock, non-blocking --> busy: skip X
             |
             v
    if it existed: still the file at that path? --no--> lost a race: skip X
             |
             v
    link X -> .sending-X --ok--> CLAIMED: send, then complete/defer/reject
             |      \\
          exists     X is gone --> sent by someone else: release
             |
    .claim-X existed (a dead one of ours)? --yes--> remove it, link again
             |no: a 7.3 processor's
    older than 7.3's own limit (3 h)? --yes--> remove it, link again
             |no
        release: 7.3 is sending X

Releasing removes ``.sending-X``, then ``.claim-X`` (each only if still its
own), and closes the lock.  A claim of a processor killed mid-send is taken
over on the next pass; only a 7.3 claim waits 7.3's 3 hours.  On a network
file system a lock proves nothing (NFS ``nolock``, a lease lost in a network
cut): a claim is taken over only when older than *stale_after*.  Without
``fcntl`` (Windows) `claim` is `zope.sendmail.linkclaim.claim`: 7.3's links.
"""
import logging
import os
import time

from zope.sendmail.privatefiles import write_atomically
from zope.sendmail.privatefiles import write_private


try:
    import fcntl
except ImportError:  # Windows: see the end of this module
    fcntl = None


log = logging.getLogger(__name__)

CLAIM = '.claim-'
SENDING = '.sending-'
REJECTED = '.rejected-'
REASON = '.reason-'
RETRY = '.retry-'
MAX_73_SEND_TIME = 3 * 60 * 60


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # someone else (a cleaner, an operator) removed it: fine


def claim(path, stale_after=None):
    """Claim the message at *path*; return a `Claim`, or None when another
    processor holds it, it is gone, or the file system refused (any OSError
    is logged here, never raised: no caller may die of one message).

    *stale_after* (seconds) is for network file systems, where a lock
    proves nothing about its holder: a claim left behind (or locked) is
    then taken over only once its lock file is that old.
    """
    directory, name = os.path.split(path)
    lock_path = os.path.join(directory, CLAIM + name)
    sending = os.path.join(directory, SENDING + name)
    opened = []
    try:
        return _claim(path, lock_path, sending, stale_after, opened)
    except OSError as e:
        # ESTALE (the file replaced on an NFS server), EPERM (a directory
        # where a message should be), EACCES...: not claimable now.
        log.warning('cannot claim %s: %s', path, e)
        for result in opened:
            if isinstance(result, Claim):
                result.release()
            else:
                os.close(result)
        return None


def _claim(path, lock_path, sending, stale_after, opened):
    flags = os.O_RDWR | os.O_CLOEXEC
    try:
        fd = os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        left_over = False
    except FileExistsError:
        # Locked by a live processor of ours, or left by a dead one.
        try:
            fd = os.open(lock_path, flags)
        except FileNotFoundError:
            return None  # released meanwhile: next pass
        left_over = True
    except FileNotFoundError:
        return None  # the directory went away under us
    opened.append(fd)
    mine = os.fstat(fd)
    if left_over and stale_after is not None and \
            time.time() - mine.st_mtime < stale_after:
        os.close(opened.pop())
        return None  # on a network file system, young means alive
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(opened.pop())
        if stale_after is None:
            return None  # a live processor of ours is sending it
        # Old enough to be past the lease: the lock of an NFSv3 client
        # that never came back, never released.  Replace the claim.
        log.warning('breaking the claim on %s, locked for %d s by a'
                    ' processor presumed dead', path,
                    time.time() - mine.st_mtime)
        for stale in (lock_path, sending):
            if _owns(stale, _identity(mine)) or stale == sending and \
                    _older(stale, stale_after):
                _unlink(stale)
        return _claim(path, lock_path, sending, None, opened)
    if left_over and not _owns(lock_path, _identity(mine)):
        # The holder released (and removed) it between our open and our
        # lock: what we locked is no longer the claim.  Next pass.
        os.close(opened.pop())
        return None
    # The lock file stays empty: one with data costs a block to free at
    # every release, which is slow on some file systems.
    result = Claim(path, fd, lock_path, sending, _identity(mine))
    opened[-1] = result
    for attempt in range(3):
        try:
            os.link(path, sending)
            result._linked = _identity(os.lstat(sending))
            return result
        except FileNotFoundError:
            break  # X is gone: sent or removed by someone else
        except FileExistsError:
            pass
        if left_over:
            log.warning('taking over the claim on %s of a processor that'
                        ' died while sending it', path)
            left_over = False
            _unlink(sending)
            continue
        try:
            age = time.time() - os.stat(sending).st_mtime
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if age < MAX_73_SEND_TIME:
            break  # a zope.sendmail 7.3 processor is sending it
        log.warning('removing a stale 7.3 claim on %s (%d s old)', path, age)
        _unlink(sending)
    result.release()
    return None


class Claim:
    """The right to send (and then dispose of) the message at ``path``."""

    def __init__(self, path, fd, lock_path, sending_path, lock_identity):
        self.path = path
        self.directory, self.name = os.path.split(path)
        self._fd = fd
        self._lock_path = lock_path
        self._lock_identity = lock_identity
        self._sending = sending_path
        self._linked = None  # (device, inode) of .sending-X once linked

    def __repr__(self):
        state = 'released' if self._fd is None else 'held'
        return f'<Claim {state} {self.path}>'

    @property
    def held(self):
        return self._fd is not None

    def sidecar(self, prefix, name=None):
        """The path of a dot-file beside the message (``.retry-X``...)."""
        return os.path.join(self.directory, prefix + (name or self.name))

    def read(self):
        with open(self.path, 'rb') as f:
            return f.read()

    def stat(self):
        return os.stat(self.path)

    def due(self, now):
        """Whether the message is due at *now*: always in ``new/``; in
        ``cur/``, by the mtime of the file opened afresh, since a listing's
        cached one (NFS) may predate a retry time another processor set."""
        if os.path.basename(self.directory) != 'cur':
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # sent by another processor meanwhile
        try:
            return os.fstat(fd).st_mtime <= now
        finally:
            os.close(fd)

    def complete(self):
        """The message was delivered: remove it (and its bookkeeping)."""
        _unlink(self.path)
        if os.path.basename(self.directory) == 'cur':
            _unlink(self.sidecar(RETRY))  # only deferred messages have one
        self.release()

    def move_aside(self, reason):
        """Set the message aside as ``.rejected-X``, never to be retried,
        with *reason* in ``.reason-X`` for the operator."""
        write_atomically(self.sidecar(REASON), reason.encode('utf-8') + b'\n')
        os.rename(self.path, self.sidecar(REJECTED))
        _unlink(self.sidecar(RETRY))
        self.release()

    def defer(self, next_attempt, retry_data, message=None):
        """Keep the message for a later attempt, at *next_attempt* (a
        timestamp, recorded as the file's mtime), in ``cur/``.

        *retry_data* goes to ``.retry-X``; *message* (bytes), when given,
        replaces the file's contents (fewer recipients left).
        """
        cur = os.path.join(os.path.dirname(self.directory), 'cur')
        target = os.path.join(cur, self.name)
        write_atomically(os.path.join(cur, RETRY + self.name), retry_data)
        source = self.path
        if message is not None:
            source = write_private(os.path.dirname(self.directory), message)
        # The due time is set before the file appears in cur/, so that no
        # other processor finds it due in between.
        os.utime(source, (time.time(), next_attempt))
        os.rename(source, target)
        if target != self.path:
            if source != self.path:
                _unlink(self.path)
            _unlink(self.sidecar(RETRY))
        self.release()

    def release(self):
        """Give up the claim, leaving the message where it is; return None.
        Only what is still this claim's own is removed: a holder that lost
        its claim (on NFS, after a network cut longer than the lease) must
        not remove the files of the next holder."""
        if self._fd is None:
            return
        try:
            if _owns(self._lock_path, self._lock_identity):
                if self._linked and _owns(self._sending, self._linked):
                    _unlink(self._sending)
                # The lock file goes before the lock: whoever opens the old
                # file afterwards finds it is not the one at the path.
                _unlink(self._lock_path)
            else:
                log.warning('the claim on %s was taken over meanwhile; its'
                            ' files are left to the new holder', self.path)
        except OSError as e:
            # The next pass or the housekeeping cleans up what is left.
            log.warning('cannot release the claim on %s: %s', self.path, e)
        finally:
            os.close(self._fd)
            self._fd = None


def _identity(stat):
    return stat.st_dev, stat.st_ino


def _owns(path, identity):
    """Whether the file at *path* is still the one of *identity*."""
    try:
        return _identity(os.lstat(path)) == identity
    except FileNotFoundError:
        return False


def _older(path, age):
    try:
        return time.time() - os.lstat(path).st_mtime >= age
    except FileNotFoundError:
        return False


if fcntl is None:
    # The claim strategy, chosen once: without flock, 7.3's hard links.
    from zope.sendmail.linkclaim import claim  # noqa: E402,F401,F811
