"""The messages of a queue as an operator sees them: `scan` and `Entry`.

`scan` lists ``new/`` and ``cur/`` (`names.listing`) as the store lays
them out: messages in ``new/`` (queued) and ``cur/`` (deferred, due at
their mtime, with ``.retry-X``), ``.sending-X`` beside a message being
sent, ``.rejected-X`` with ``.reason-X`` for a message set aside.  Only
regular files are messages; anything else (a FIFO, a symbolic link) is
reported by name and kind, never opened nor followed, and what is read of a
message (its envelope, for ``--list``) is read from the regular file
opened, at most `HEAD_SIZE` bytes.  `zope.sendmail.stores.maildir.store`
answers the operators' questions with what this finds.
"""
import os

from zope.interface import implementer

from zope.sendmail.interfaces import IListedMessage
from zope.sendmail.message import message_id_of
from zope.sendmail.stores.maildir.envelope import EnvelopeError
from zope.sendmail.stores.maildir.envelope import parse_envelope
from zope.sendmail.stores.maildir.names import REASON
from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.names import SENDING
from zope.sendmail.stores.maildir.names import is_message
from zope.sendmail.stores.maildir.names import listing
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import identity
from zope.sendmail.stores.maildir.safefiles import kind_of
from zope.sendmail.stores.maildir.safefiles import open_regular
from zope.sendmail.stores.maildir.safefiles import read_fd
from zope.sendmail.stores.maildir.sidefiles import fresh_state
from zope.sendmail.stores.maildir.sidefiles import parse_retry
from zope.sendmail.stores.maildir.sidefiles import read_text
from zope.sendmail.stores.maildir.sidefiles import sidecar


HEAD_SIZE = 64 * 1024   # enough of a file for its envelope and headers
STATES = ('sending', 'queued', 'deferred', 'rejected')


@implementer(IListedMessage)
class Entry:
    """One message of the queue as an operator sees it; its key is its
    path, its location ``new/NAME`` (or ``cur/.rejected-NAME``...)."""

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
        self.queued = fresh_state(self.name, stat.st_mtime).queued

    key = property(lambda self: self.path)
    location = property(lambda self: self.relpath)

    def __repr__(self):
        return f'<Entry {self.state} {self.relpath!r}>'

    def sidecar(self, prefix):
        return sidecar(self.path, prefix, self.name)

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
            self.reason = read_text(self.sidecar(REASON))
        elif self.state == 'deferred':
            data = read_text(self.sidecar(RETRY))
            retry = parse_retry((data or '').encode('utf-8'), self.name,
                                self.queued)
            self.queued, self.attempts = retry.queued, retry.attempts
            self.last_error = retry.last_error or None
            self.next_attempt = self.mtime


def scan(queue_path, read=False, odd=None):
    """The `Entry` of every message in the queue, by state, then oldest
    first; with *read*, each `Entry.read`.  What is not a regular file is
    no message: *odd*, a list, receives ``(relpath, kind)`` of each."""
    found = {}
    for sub, item in listing(queue_path):
        found.setdefault(sub, []).append(item)
    entries = []
    for sub, items in found.items():
        present = {e.name for e in items}
        for item in items:
            name = item.name
            if name.startswith(REJECTED):
                state = 'rejected'
            elif not is_message(name):
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
