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
    cannot be opened, or not ours? --> younger than the bound: skip X
             |                         older: remove it, start again
             v
    flock, non-blocking --> busy: skip X
             |
             v
    if it existed: still the file at that path? --no--> lost a race: skip X
             |
             v
    open X: a regular file? --no--> skip X
             |
             v
    link X -> .sending-X, the file opened? --ok--> CLAIMED: send it, then
             |      \\                              complete/defer/reject
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
cut): a claim is taken over only when older than *stale_after*.  A claim
file that is not a regular file of this process's user (a symbolic link, a
FIFO, another user's, one it may not open) proves nothing either, and
whoever made it could hold it for ever: it is broken once older than
*stale_after*, or `UNTRUSTED_CLAIM_AGE`.  The message itself is read, and
linked, only as the regular file it was when the claim opened it (the
`Claim` keeps it open).  Without ``fcntl`` (Windows) `claim` is
`zope.sendmail.stores.maildir.linkclaim.claim`: 7.3's links.
"""
import logging
import os
import time

from zope.sendmail.stores.maildir.names import CLAIM
from zope.sendmail.stores.maildir.names import SENDING
from zope.sendmail.stores.maildir.names import MAX_73_SEND_TIME
from zope.sendmail.stores.maildir.claimed import Claim
from zope.sendmail.stores.maildir.notices import log_once
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import identity as _identity
from zope.sendmail.stores.maildir.safefiles import open_regular
from zope.sendmail.stores.maildir.safefiles import owns
from zope.sendmail.stores.maildir.safefiles import remove


try:
    import fcntl
except ImportError:  # Windows: see the end of this module
    fcntl = None


log = logging.getLogger(__name__)

# How long a claim file this processor cannot trust (see the module)
# keeps its message waiting: far longer than any send of a live processor.
UNTRUSTED_CLAIM_AGE = 60 * 60


def claim(path, stale_after=None, notices=None):
    """Claim the message at *path*; return a `Claim`, or None when another
    processor holds it, it is gone, or the file system refused (any OSError
    is logged here, never raised: no caller may die of one message).

    *stale_after* (seconds) is for network file systems, where a lock
    proves nothing about its holder: a claim left behind (or locked) is
    then taken over only once its lock file is that old.  *notices* (an
    `INotices`) keeps what lasts (a claim file that cannot be used, a
    message that is not a regular file) to one log line per entry.
    """
    directory, name = os.path.split(path)
    lock_path = os.path.join(directory, CLAIM + name)
    sending = os.path.join(directory, SENDING + name)
    opened = []
    try:
        return _claim(path, lock_path, sending, stale_after, opened, notices)
    except NotRegularFileError as e:
        log_once(notices, log, path, 'not regular', logging.ERROR,
                 'cannot claim %r: %s; it is never read', path, e.kind)
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


def _open_lock(path, lock_path, sending, stale_after, notices):
    """The descriptor and stat of the existing claim file *lock_path*,
    opened for locking; None when it is not to be used now; raises
    ``FileNotFoundError`` when it is gone."""
    try:
        fd, st = open_regular(lock_path, os.O_RDWR)
        if not hasattr(os, 'geteuid') or st.st_uid == os.geteuid():
            return fd, st
        os.close(fd)
        why = f'it belongs to another user (uid {st.st_uid})'
    except NotRegularFileError as e:
        why = f'it is {e.kind}'
    except PermissionError as e:
        why = e.strerror
    st = os.lstat(lock_path)
    bound = UNTRUSTED_CLAIM_AGE if stale_after is None else stale_after
    # abs(): a claim dated in the future is no more to be trusted.
    age = abs(time.time() - st.st_mtime)
    if age < bound:
        log_once(notices, log, path, 'claim', logging.WARNING,
                 'cannot use the claim file of %s: %s; the message waits'
                 ' until it is %d s old, then the claim is broken', path,
                 why, bound)
        return None
    try:
        remove(lock_path)
    except OSError as e:  # a directory, say: an operator must look
        log_once(notices, log, path, 'claim broken', logging.WARNING,
                 'cannot break the claim on %s (%s): %s', path, why,
                 e.strerror)
        return None
    log.warning('broke the claim on %s (%s, %d s old)', path, why, age)
    try:
        if abs(time.time() - os.lstat(sending).st_mtime) >= bound:
            remove(sending)
    except FileNotFoundError:
        pass  # none was made: nothing to break
    try:
        return _open_new(lock_path)
    except FileExistsError:
        return None  # made again meanwhile, by another processor


def _open_new(lock_path):
    fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC | os.O_CREAT |
                 os.O_EXCL, 0o600)
    return fd, None


def _claim(path, lock_path, sending, stale_after, opened, notices):
    try:
        fd, mine = _open_new(lock_path)
        left_over = False
    except FileExistsError:
        # Locked by a live processor of ours, or left by a dead one.
        try:
            opened_lock = _open_lock(path, lock_path, sending, stale_after,
                                     notices)
        except FileNotFoundError:
            return None  # released meanwhile: next pass
        if opened_lock is None:
            return None
        fd, mine = opened_lock
        left_over = mine is not None
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
            if owns(stale, _identity(mine)) or stale == sending and \
                    _older(stale, stale_after):
                remove(stale)
        return _claim(path, lock_path, sending, None, opened, notices)
    if left_over and not owns(lock_path, _identity(mine)):
        # The holder released (and removed) it between our open and our
        # lock: what we locked is no longer the claim.  Next pass.
        os.close(opened.pop())
        return None
    # The lock file stays empty: one with data costs a block to free at
    # every release, which is slow on some file systems.
    result = Claim(path, fd, lock_path, sending, _identity(mine))
    opened[-1] = result
    try:
        result._message, message = open_regular(path)
    except FileNotFoundError:
        result.release()
        return None  # sent or removed by someone else
    return result if _link(result, path, sending, _identity(message),
                           left_over) else result.release()


def _link(result, path, sending, message, left_over):
    """Make the 7.3 claim ``.sending-X``, a link to the file *message*
    (its identity) which the claim holds open; whether it was made."""
    for attempt in range(3):
        try:
            # Never through a link put in X's place since it was opened.
            os.link(path, sending, follow_symlinks=False)
            result._linked = _identity(os.lstat(sending))
        except FileNotFoundError:
            return False  # X is gone: sent or removed by someone else
        except FileExistsError:
            pass
        else:
            if result._linked == message:
                return True
            remove(sending)  # X was swapped meanwhile: next pass
            result._linked = None
            return False
        if left_over:
            log.warning('taking over the claim on %s of a processor that'
                        ' died while sending it', path)
            left_over = False
            remove(sending)
            continue
        try:
            age = time.time() - os.lstat(sending).st_mtime
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if age < MAX_73_SEND_TIME:
            return False  # a zope.sendmail 7.3 processor is sending it
        log.warning('removing a stale 7.3 claim on %s (%d s old)', path, age)
        remove(sending)
    return False


def _older(path, age):
    try:
        return time.time() - os.lstat(path).st_mtime >= age
    except FileNotFoundError:
        return False


if fcntl is None:
    # The claim strategy, chosen once: without flock, 7.3's hard links.
    from zope.sendmail.stores.maildir.linkclaim import \
        claim  # noqa: E402,F401,F811
