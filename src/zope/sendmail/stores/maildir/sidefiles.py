"""The bookkeeping files beside a queued message: ``.retry-X`` and
``.reason-X``, the one place that reads and writes them.

``.retry-X`` lies beside a deferred message ``X`` in ``cur/``: its
`RetryState` (when X was queued, its attempts so far, the last and the
next one, the last error) as ``key: value`` lines an operator can read.
``.reason-X`` lies beside a message set aside as ``.rejected-X``: why, as
one line of text.  Both are written through a temporary file and a rename
(`privatefiles.write_atomically`), and read as regular files only, at most
`SIDE_FILE_SIZE` bytes (`safefiles`): they are bookkeeping, not mail, so
what cannot be read of them is forgotten, never fatal.  The message's own
bytes never change for this bookkeeping, so a 7.3 processor would still
send it unchanged.
"""
import os
import re

from zope.sendmail.stores.maildir.names import REASON
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.privatefiles import write_atomically
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import read_regular
from zope.sendmail.stores.retrystate import RetryState


#: More than any side file this package writes.
SIDE_FILE_SIZE = 64 * 1024

_TIMESTAMP = re.compile(r'(\d{9,11})[.]')


def sidecar(path, prefix, name=None):
    """The path of the side file *prefix* (`RETRY`, `REASON`...) of the
    message at *path* (or of the message *name* beside it)."""
    directory, own = os.path.split(path)
    return os.path.join(directory, prefix + (name or own))


def fresh_state(name, mtime):
    """The `RetryState` of the message *name* never tried: queued when its
    name says (every Maildir name starts with its creation time), else at
    *mtime*."""
    match = _TIMESTAMP.match(name)
    return RetryState(float(match.group(1)) if match else mtime)


def parse_retry(data, name, mtime):
    """The `RetryState` in ``.retry-X`` contents *data* (bytes) of the
    message *name*; what cannot be read is forgotten."""
    state = fresh_state(name, mtime)
    for line in data.decode('utf-8', 'replace').splitlines():
        key, sep, value = line.partition(':')
        value = value.strip()
        try:
            if key == 'attempts':
                state.attempts = int(value)
            elif key == 'queued':
                state.queued = float(value)
            elif key == 'last-attempt':
                state.last_attempt = float(value)
            elif key == 'next-attempt':
                state.next_attempt = float(value)
            elif key == 'last-error':
                state.last_error = value
        except ValueError:
            continue
    return state


def format_retry(state):
    """The ``.retry-X`` contents (bytes) of *state*."""
    lines = [f'attempts: {state.attempts}', f'queued: {state.queued:.0f}']
    if state.last_attempt is not None:
        lines.append(f'last-attempt: {state.last_attempt:.3f}')
    if state.next_attempt is not None:
        lines.append(f'next-attempt: {state.next_attempt:.3f}')
    if state.last_error:
        lines.append(f'last-error: {state.last_error}')
    return ('\n'.join(lines) + '\n').encode('utf-8')


def read_retry(path, name, mtime):
    """The `RetryState` of the message *name* at *path* (its ``.retry-X``
    beside it), *mtime* its file's; a fresh one without ``.retry-X``.
    Raises `NotRegularFileError` for a ``.retry-X`` that is no regular
    file (never read): the caller decides what to say."""
    try:
        data = read_regular(sidecar(path, RETRY, name), SIDE_FILE_SIZE)
    except FileNotFoundError:
        return fresh_state(name, mtime)
    return parse_retry(data, name, mtime)


def write_retry(directory, name, data):
    """Write *data* (what `format_retry` made) into the ``.retry-X`` of
    the message *name* in *directory*."""
    write_atomically(os.path.join(directory, RETRY + name), data)


def write_reason(path, reason, name=None):
    """Write *reason* into the ``.reason-X`` of the message at *path*."""
    write_atomically(sidecar(path, REASON, name),
                     reason.encode('utf-8') + b'\n')


def read_text(path):
    """The text of the side file *path* for an operator: None when there
    is none, a note when it is no regular file (never read)."""
    try:
        data = read_regular(path, SIDE_FILE_SIZE)
    except FileNotFoundError:
        return None
    except NotRegularFileError as e:
        return f'(not shown: {os.path.basename(path)!r} is {e.kind})'
    return data.decode('utf-8', 'replace').strip()


def rejected_at(path, name, mtime):
    """When the message *name*, set aside as *path*, was rejected: the
    time of its ``.reason-X``, else (7.3 kept no reason) *mtime*, its
    file's."""
    try:
        return os.lstat(sidecar(path, REASON, name)).st_mtime
    except FileNotFoundError:
        return mtime
