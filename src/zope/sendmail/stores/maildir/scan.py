"""The messages of a queue as an operator sees them: `scan` and `Entry`.

`scan` lists ``new/`` and ``cur/`` as `claim` lays them out:
messages in ``new/`` (queued) and ``cur/`` (deferred, due at their mtime,
with ``.retry-X``), ``.sending-X`` beside a message being sent,
``.rejected-X`` with ``.reason-X`` for a message set aside.  Only regular
files are messages; anything else (a FIFO, a symbolic link) is reported by
name and kind, never opened nor followed, and what is read of a message
(its envelope, for ``--list``) is read from the regular file opened, at
most `HEAD_SIZE` bytes.  `zope.sendmail.console.queueops` shows and tidies what
this finds.
"""
import os

from zope.sendmail.stores.maildir.names import REASON
from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.names import SENDING
from zope.sendmail.stores.maildir.envelope import EnvelopeError
from zope.sendmail.message import message_id_of
from zope.sendmail.stores.maildir.envelope import parse_envelope
from zope.sendmail.processing.retry import RetryState
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import identity
from zope.sendmail.stores.maildir.safefiles import kind_of
from zope.sendmail.stores.maildir.safefiles import open_regular
from zope.sendmail.stores.maildir.safefiles import read_fd
from zope.sendmail.stores.maildir.safefiles import read_regular


HEAD_SIZE = 64 * 1024   # enough of a file for its envelope and headers
TEXT_SIZE = 64 * 1024   # more than any .reason-X or .retry-X we write
STATES = ('sending', 'queued', 'deferred', 'rejected')


class Entry:
    """One message of the queue as an operator sees it."""

    fromaddr = toaddrs = message_id = problem = None
    attempts = 0
    next_attempt = last_error = reason = None

    def __init__(self, queue_path, sub, name, state, stat):
        self.path = os.path.join(queue_path, sub, name)
        self.relpath = os.path.join(sub, name)
        self.state = state
        self.name = name[len(REJECTED):] if state == 'rejected' else name
        self.identity = identity(stat)
        self.mtime = stat.st_mtime
        self.queued = RetryState.fresh(self.name, stat.st_mtime).queued

    def sidecar(self, prefix):
        return os.path.join(os.path.dirname(self.path), prefix + self.name)

    def still(self):
        """Whether the file at `path` is still the one listed."""
        try:
            return identity(os.lstat(self.path)) == self.identity
        except FileNotFoundError:
            return False

    def read(self):
        """Read what the listing shows: envelope, Message-Id, bookkeeping.
        """
        try:
            fd, st = open_regular(self.path)
        except NotRegularFileError as e:
            self.problem = f'not a regular file any more: {e.kind}'
            return
        try:
            head = read_fd(fd, min(st.st_size, HEAD_SIZE))
        finally:
            os.close(fd)
        try:
            self.fromaddr, self.toaddrs, message = parse_envelope(head)
            self.message_id = message_id_of(message)
        except EnvelopeError as e:
            self.problem = str(e)
        if self.state == 'rejected':
            self.reason = _read_text(self.sidecar(REASON))
        elif self.state == 'deferred':
            data = _read_text(self.sidecar(RETRY))
            retry = RetryState.parse((data or '').encode('utf-8'), self.name,
                                     self.queued)
            self.queued, self.attempts = retry.queued, retry.attempts
            self.last_error = retry.last_error or None
            self.next_attempt = self.mtime


def _read_text(path):
    try:
        data = read_regular(path, TEXT_SIZE)
    except FileNotFoundError:
        return None
    except NotRegularFileError as e:
        return f'(not shown: {os.path.basename(path)!r} is {e.kind})'
    return data.decode('utf-8', 'replace').strip()


def scan(queue_path, read=False, odd=None):
    """The `Entry` of every message in the queue, by state, then oldest
    first; with *read*, each `Entry.read`.  What is not a regular file is
    no message: *odd*, a list, receives ``(relpath, kind)`` of each."""
    entries = []
    for sub in ('new', 'cur'):
        try:
            with os.scandir(os.path.join(queue_path, sub)) as found:
                found = list(found)
        except FileNotFoundError:
            continue
        present = {e.name for e in found}
        for item in found:
            name = item.name
            if name.startswith(REJECTED):
                state = 'rejected'
            elif name.startswith('.'):
                continue
            elif SENDING + name in present:
                state = 'sending'
            else:
                state = 'queued' if sub == 'new' else 'deferred'
            try:
                st = item.stat(follow_symlinks=False)
                if not item.is_file(follow_symlinks=False):
                    if odd is not None:
                        odd.append((os.path.join(sub, name),
                                    kind_of(st.st_mode)))
                    continue
                entry = Entry(queue_path, sub, name, state, st)
                if read:
                    entry.read()
            except FileNotFoundError:
                continue  # sent or moved meanwhile
            entries.append(entry)
    entries.sort(key=lambda e: (STATES.index(e.state), e.queued, e.name))
    return entries
