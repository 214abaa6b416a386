"""The names of a Maildir queue's files: messages and the files beside them.

`unique_name` makes the name of a new queue file; `queued_order` sorts the
names of this package's files and of 7.3's in the order their messages
were queued.  Beside a message ``X`` lie dot-files, which no reader takes
for a message (names starting with ``.`` are not messages, in 7.3 too):

    .claim-X     the lock file of the processor sending X (ours)
    .sending-X   a hard link to X: the claim of a 7.3 processor, and ours
    .retry-X     when X was queued, its attempts and last error (cur/)
    .rejected-X  X, set aside: refused for good, unreadable or expired
    .reason-X    why X was set aside, for the operator
    .tmp-...     a side file being written (renamed into place when whole)

7.3 processors take a ``.sending-X`` younger than `MAX_73_SEND_TIME` for
a claim in progress.  `listing` is the one listing of ``new/`` and
``cur/``, whoever reads them (the store's due messages, the operator's
view, `Maildir`'s iteration).
"""
import itertools
import os
import re
import secrets
import socket
import threading
import time


CLAIM = '.claim-'
SENDING = '.sending-'
RETRY = '.retry-'
REJECTED = '.rejected-'
REASON = '.reason-'
TMP = '.tmp-'
#: How long a 7.3 processor may take to send a message it claimed.
MAX_73_SEND_TIME = 3 * 60 * 60
#: Where messages wait: ``new/`` (never tried), ``cur/`` (deferred).
MESSAGE_DIRS = ('new', 'cur')

_counter = itertools.count()
_counter_lock = threading.Lock()


def _safe_hostname():
    # The Maildir convention escapes the characters that would break the
    # name's structure.
    return socket.gethostname().replace('/', r'\057').replace(':', r'\072')


def unique_name():
    """A file name no other writer can choose: time, pid, a per-process
    counter, random bits and the host name.  The microseconds are
    zero-padded, so that names sort in the order they were made."""
    now = time.time()
    with _counter_lock:
        count = next(_counter)
    return '%d.M%06dP%dQ%dR%s.%s' % (
        now, (now % 1) * 1e6, os.getpid(), count, secrets.token_hex(4),
        _safe_hostname())


# Every Maildir name starts with the seconds it was made at; this
# package's names then say the microseconds (``.M123P``, unpadded before
# 8.0), 7.3's do not (``SECONDS.PID.HOST.RANDOM``).
_NAME_TIME = re.compile(r'(\d+)(?:[.]M(\d{1,6})P)?')


def queued_order(name, mtime):
    """The sort key of the queue file *name* that puts files in the order
    they were queued: the time in the name; for a name saying only the
    second (7.3's), the file's mtime when it lies within that second.
    *mtime* is called, without arguments, only for such names."""
    match = _NAME_TIME.match(name)
    if match is None:
        return (mtime(), name)  # not a Maildir name: its mtime is all
    seconds, micros = match.groups()
    queued = int(seconds)
    if micros is not None:
        return (queued + int(micros) / 1e6, name)
    written = mtime()
    if queued <= written < queued + 1:
        return (written, name)
    return (float(queued), name)


def is_message(name):
    """Whether the entry *name* of ``new/`` or ``cur/`` may be a message:
    names starting with a dot are side files (7.3's rule too)."""
    return not name.startswith('.')


def listing(queue_path):
    """Each entry of the queue's ``new/`` and ``cur/``, side files
    included, as ``(sub, os.DirEntry)``, nothing opened; streamed, so that
    a caller keeping only some of them holds no more in memory.  A
    directory that is missing lists nothing (an operator removed it; the
    next listing sees it again)."""
    for sub in MESSAGE_DIRS:
        try:
            entries = os.scandir(os.path.join(queue_path, sub))
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                yield sub, entry
