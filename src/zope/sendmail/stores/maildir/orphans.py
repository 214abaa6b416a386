"""Housekeeping of a queue's ``new/`` and ``cur/``: orphaned dot-files.

A claim (``.claim-X``, ``.sending-X``) or a retry record (``.retry-X``)
outlives its message X when a processor dies between removing X and its
bookkeeping; a ``.tmp-`` file when it dies while writing one.  The queue
processor thread calls `remove_orphans` now and then (hourly by default);
it never touches a claim that is still locked, nor a file young enough to
belong to a message being moved.  It follows no link and opens nothing
but regular files: a link or a FIFO in a claim's place is removed as it
is.
"""
import logging
import os
import stat
import time

from zope.sendmail.stores.maildir.names import CLAIM
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.names import SENDING
from zope.sendmail.stores.maildir.names import TMP
from zope.sendmail.stores.maildir.safefiles import open_regular


log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: its claims take no lock (linkclaim)
    fcntl = None


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
        for prefix in (CLAIM, SENDING, RETRY, TMP):
            if entry.name.startswith(prefix):
                break
        else:
            continue
        if prefix != TMP and entry.name[len(prefix):] in names:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if now - st.st_mtime < min_age:
                continue
            if prefix == CLAIM and fcntl is not None and \
                    stat.S_ISREG(st.st_mode):
                # Opened for writing: NFS refuses an exclusive lock on a
                # descriptor opened read-only (EBADF).
                fd, _ = open_regular(entry.path, os.O_RDWR)
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
        except OSError as e:
            # One odd file (a directory, a permission) must not stop the
            # housekeeping of the others; the operator sees it here.
            log.warning('housekeeping: cannot remove %r: %s', entry.path,
                        e.strerror or e)
    return removed
