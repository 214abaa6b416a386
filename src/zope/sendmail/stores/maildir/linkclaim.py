"""Claims without ``flock``: zope.sendmail 7.3's hard-link protocol alone.

Where the ``fcntl`` module does not exist (Windows), `claim`
hands out these claims instead of its locked ones.  The claim on a queued
message ``X`` is then only the hard link ``.sending-X``, as 7.3 made it, so
7.3's processors and ours respect each other's claims::

    .sending-X exists?  --yes-->  younger than 3 hours: busy, skip X
          |no                     older: left by a dead processor, remove it
          v
    open X: a regular file? --no--> skip X
          |
    touch X (the link's age is the claim's), link X -> .sending-X
          |ok, the file opened --> CLAIMED    exists: busy    X gone: skip

Releasing removes ``.sending-X`` if it is still this claim's own.  Without a
lock the kernel drops when a process dies, a processor killed mid-send
leaves its claim for 7.3's ``MAX_73_SEND_TIME`` (3 hours) before another
processor takes it over, as with 7.3.  As with the locked claims, the
message is read, touched and linked only as the regular file it was when
the claim opened it (`zope.sendmail.stores.maildir.safefiles`).
"""
import logging
import os
import time

from zope.sendmail.stores.maildir.names import MAX_73_SEND_TIME
from zope.sendmail.stores.maildir.names import SENDING
from zope.sendmail.stores.maildir.claimed import Claim
from zope.sendmail.stores.maildir.notices import log_once
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import identity
from zope.sendmail.stores.maildir.safefiles import open_regular
from zope.sendmail.stores.maildir.safefiles import owns
from zope.sendmail.stores.maildir.safefiles import remove


log = logging.getLogger(__name__)


def claim(path, stale_after=None, notices=None):
    """Claim the message at *path* with a hard link; return a `LinkClaim`,
    or None when another processor holds it, it is gone, or the file system
    refused (logged, never raised).  *stale_after* is accepted for the
    locked claims' sake; the age that counts here is always 7.3's.
    *notices* is the locked claims' too."""
    directory, name = os.path.split(path)
    sending = os.path.join(directory, SENDING + name)
    try:
        return _claim(path, sending)
    except NotRegularFileError as e:
        log_once(notices, log, path, 'not regular', logging.ERROR,
                 'cannot claim %r: %s; it is never read', path, e.kind)
    except OSError as e:
        log.warning('cannot claim %s: %s', path, e)
    return None


def _claim(path, sending):
    try:
        age = time.time() - os.lstat(sending).st_mtime
    except FileNotFoundError:
        pass
    else:
        if age < MAX_73_SEND_TIME:
            return None  # another processor (of ours, or 7.3) is sending
        log.warning('removing a stale 7.3 claim on %s (%d s old)', path, age)
        try:
            os.unlink(sending)
        except FileNotFoundError:
            return None  # another processor removed it first: next pass
    try:
        fd, st = open_regular(path)
    except FileNotFoundError:
        return None  # sent by someone else
    try:
        # The due time of a message in cur/ is its mtime: remember it
        # before the touch that dates the claim.
        os.utime(fd if os.utime in os.supports_fd else path)
        os.link(path, sending, follow_symlinks=False)
        linked = os.lstat(sending)
    except (FileNotFoundError, FileExistsError):
        os.close(fd)
        return None  # sent by someone else, or claimed first by someone
    except BaseException:
        os.close(fd)
        raise
    if identity(linked) != identity(st):
        os.close(fd)
        remove(sending)  # X was swapped since it was opened: next pass
        return None
    return LinkClaim(path, sending, linked, st.st_mtime, fd)


class LinkClaim(Claim):
    """A claim that is the hard link ``.sending-X`` only."""

    def __init__(self, path, sending_path, link_stat, mtime, message=None):
        super().__init__(path, None, None, sending_path, None, message)
        self._linked = (link_stat.st_dev, link_stat.st_ino)
        self._mtime = mtime

    def __repr__(self):
        state = 'held' if self.held else 'released'
        return f'<LinkClaim {state} {self.path}>'

    @property
    def held(self):
        return self._linked is not None

    def due(self, now):
        """Whether the message was due at *now*, by its mtime before the
        claim touched it."""
        if os.path.basename(self.directory) != 'cur':
            return True
        return self._mtime <= now

    def release(self):
        """Remove ``.sending-X`` if it is still ours; return None."""
        self._close_message()
        linked, self._linked = self._linked, None
        if linked is None:
            return
        try:
            if owns(self._sending, linked):
                os.unlink(self._sending)
        except FileNotFoundError:
            # Removed by a processor that found it stale: nothing to do.
            pass
        except OSError as e:
            # The housekeeping removes it once the message is gone; until
            # then it delays only this message, by 7.3's limit at most.
            log.warning('cannot release the claim on %s: %s', self.path, e)
