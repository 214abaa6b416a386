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

Releasing removes ``.sending-X`` and then ``.claim-X``, and closes the lock.
A claim of a processor killed mid-send is therefore taken over on the next
pass; only a 7.3 claim waits the 3 hours 7.3 itself waits.
"""
import fcntl
import logging
import os
import threading
import time


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
        # Someone else (a cleaner, an operator) removed it: fine.
        pass


def claim(path):
    """Claim the message at *path*; return a `Claim`, or None when another
    processor holds it or it is gone."""
    directory, name = os.path.split(path)
    lock_path = os.path.join(directory, CLAIM + name)
    sending = os.path.join(directory, SENDING + name)
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
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None  # a live processor of ours is sending it
    if left_over:
        try:
            here = os.stat(lock_path)
            mine = os.fstat(fd)
            if (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino):
                raise FileNotFoundError(lock_path)
        except FileNotFoundError:
            # The holder released (and removed) it between our open and
            # our lock: what we locked is no longer the claim.  Next pass.
            os.close(fd)
            return None
    # The lock file stays empty: one with data costs a block to free at
    # every release, which is slow on some file systems.
    result = Claim(path, fd, lock_path, sending)
    for attempt in range(3):
        try:
            os.link(path, sending)
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
    result._linked = False
    result.release()
    return None


class Claim:
    """The right to send (and then dispose of) the message at ``path``."""

    def __init__(self, path, fd, lock_path, sending_path):
        self.path = path
        self.directory, self.name = os.path.split(path)
        self._fd = fd
        self._lock_path = lock_path
        self._sending = sending_path
        self._linked = True

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
            source = os.path.join(self.directory, '.tmp-' + self.name)
            with open(source, 'wb') as f:
                f.write(message)
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
        """Give up the claim, leaving the message where it is."""
        if self._fd is None:
            return
        if self._linked:
            _unlink(self._sending)
        # The lock file goes before the lock: whoever opens the old file
        # afterwards finds it is not the one at the path any more.
        _unlink(self._lock_path)
        os.close(self._fd)
        self._fd = None


def write_atomically(path, data, sync=False):
    """Write *data* to *path* through a temporary file and a rename, so a
    reader never sees half of it."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f'.tmp-{os.getpid()}-'
                                  f'{threading.get_ident()}-{name}')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except OSError:
        _unlink(tmp)
        raise


def remove_orphans(directory, min_age=300, now=None):
    """Remove claim and retry files whose message is gone, once they are
    *min_age* seconds old (younger ones may belong to a message being
    moved); skip the lock files still locked.  Return their number."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    names = {e.name for e in entries}
    for entry in entries:
        for prefix in (CLAIM, SENDING, RETRY, '.tmp-'):
            if entry.name.startswith(prefix):
                break
        else:
            continue
        if prefix != '.tmp-' and entry.name[len(prefix):] in names:
            continue
        try:
            if now - entry.stat().st_mtime < min_age:
                continue
            if prefix == CLAIM:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(entry.path)
                finally:
                    os.close(fd)
            else:
                os.unlink(entry.path)
            removed += 1
        except (FileNotFoundError, BlockingIOError):
            continue  # gone already, or a live claim
    return removed
