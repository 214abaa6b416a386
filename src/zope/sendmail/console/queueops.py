"""What an operator sees and does to a mail queue directory.

This module owns the ``zope-sendmail`` program's operations on a queue: the
check that a path is a queue (`check_queue`), the status view (`status`,
with the file system and the holder of the processor lease),
the listing of messages (`listing`), putting rejected messages back into the
queue (`requeue_rejected`) and deleting old ones (`purge_rejected`).  They
see the queue through `zope.sendmail.stores.maildir.scan`.  A processor may run
meanwhile: files vanishing under a reader are skipped, and only rejected
messages, which no processor touches, are ever moved or deleted -- and only
when still the regular files listed.  Anything else in ``new/`` or
``cur/`` (a FIFO, a symbolic link) is shown as such, never opened nor
followed.
"""
import os
import re
import time

from zope.sendmail.stores.maildir.names import REASON
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.display import printable
from zope.sendmail.stores.maildir.leasefile import describe_lease
from zope.sendmail.stores.maildir.leasefile import read_lease
from zope.sendmail.stores.maildir.queuedirs import SUBDIRS
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.stores.maildir.names import unique_name
from zope.sendmail.interfaces import UnsafeQueueError
from zope.sendmail.stores.maildir.netfs import describe
from zope.sendmail.stores.maildir.netfs import file_system
from zope.sendmail.stores.maildir.queuedirs import check_queue_dirs
from zope.sendmail.stores.maildir.scan import STATES
from zope.sendmail.stores.maildir.scan import scan


_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}
_AGE = re.compile(r'(\d+(?:[.]\d+)?)\s*([smhdw]?)')


class QueueError(Exception):
    """The path is not a queue that can be used."""


def check_queue(path, create=False, shared_group=False):
    """Check that *path* is a queue directory that no one else could tamper
    with (see `queuedirs`: *shared_group* accepts one its
    group may write to); with *create*, make an existing empty directory
    one (a path that does not exist is never created: a mistyped one would
    silently become an empty queue)."""
    if not os.path.isdir(path):
        raise QueueError(f'no queue directory {path!r}' if not
                         os.path.exists(path) else
                         f'{path!r} is not a directory')
    try:
        check_queue_dirs(path, shared_group)
    except UnsafeQueueError as e:
        raise QueueError(str(e)) from None
    present = [d for d in SUBDIRS if os.path.isdir(os.path.join(path, d))]
    if len(present) < len(SUBDIRS):
        if present or os.listdir(path):
            raise QueueError(f'{path!r} is not a mail queue (a Maildir with'
                             f' tmp/, new/ and cur/)')
        if create:
            Maildir(path, create=True, shared_group=shared_group)


def parse_age(text):
    """An age like ``3600``, ``30m``, ``12h``, ``7d`` or ``2w``, in seconds.
    """
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f'{text!r} is not an age: give seconds or a number'
                         f' with a unit (s, m, h, d, w), like 7d')
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_age(seconds):
    """*seconds* for a human: ``45 s``, ``12 min``, ``2 h 5 min``,
    ``3 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f'{seconds} s'
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f'{minutes} min'
    if seconds < 86400:
        return f'{hours} h {minutes % 60} min'
    return f'{days} d {hours % 24} h'


def _when(timestamp, now):
    local = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))
    if timestamp <= now:
        return f'due now (since {local})'
    return f'in {format_age(timestamp - now)} ({local})'


def status(queue_path, out, now):
    """Print how many messages are in each state, when the next deferred
    one is due and how old the oldest waiting one is."""
    odd = []
    entries = scan(queue_path, odd=odd)
    by_state = {state: [e for e in entries if e.state == state]
                for state in STATES}
    waiting = [e for e in entries if e.state != 'rejected']
    lines = [('queue', queue_path),
             ('file system', describe(file_system(queue_path))),
             ('lease', describe_lease(read_lease(queue_path), now)),
             ('queued', len(by_state['queued'])),
             ('being sent', len(by_state['sending']))]
    deferred = by_state['deferred']
    text = str(len(deferred))
    if deferred:
        text += ', next attempt ' + _when(min(e.mtime for e in deferred), now)
    lines.append(('deferred', text))
    lines.append(('rejected', len(by_state['rejected'])))
    if odd:
        lines.append(('not messages', f'{len(odd)} (see --list)'))
    if waiting:
        oldest = min(e.queued for e in waiting)
        lines.append(('oldest message', f'queued {format_age(now - oldest)}'
                                        f' ago'))
    for label, value in lines:
        print(f'{label + ":":16}{value}', file=out)


def listing(queue_path, out, now):
    """Print every message: where it is, its state, envelope, Message-Id
    and, as the case may be, attempts, next attempt, last error, reason."""
    odd = []
    entries = scan(queue_path, read=True, odd=odd)
    for entry in entries:
        state = entry.state
        if entry.attempts:
            state += f', {entry.attempts} attempt' + (
                's' if entry.attempts > 1 else '')
        # Everything shown comes from the queue's files, escaped.
        print(printable(entry.relpath), file=out)
        fields = [('state', state),
                  ('queued', f'{format_age(now - entry.queued)} ago')]
        if entry.next_attempt is not None:
            fields.append(('next attempt', _when(entry.next_attempt, now)))
        if entry.problem:
            fields.append(('unreadable', entry.problem))
        else:
            fields += [('message-id', entry.message_id or '(none)'),
                       ('from', entry.fromaddr),
                       ('to', ', '.join(entry.toaddrs))]
        if entry.last_error:
            fields.append(('last error', entry.last_error))
        if entry.state == 'rejected':
            fields.append(('reason', entry.reason or '(none recorded)'))
        for label, value in fields:
            print(f'  {label + ":":14}{printable(value)}', file=out)
    for relpath, kind in sorted(odd):
        # Its name may be anyone's choice: escaped, as everything shown.
        print(f'{printable(relpath)}\n  not a message: {kind}, never read'
              f' nor followed (remove it)', file=out)
    print(f'{len(entries)} message{"" if len(entries) == 1 else "s"}',
          file=out)


def _rejected(queue_path):
    return [e for e in scan(queue_path) if e.state == 'rejected']


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # another operator's run removed it: the goal is reached


def requeue_rejected(queue_path, out):
    """Move every rejected message into ``new/`` as a new message (a new
    name, so its age and attempts start afresh); return their number."""
    count = 0
    for entry in _rejected(queue_path):
        target = os.path.join('new', unique_name())
        if not entry.still():
            continue  # requeued, purged or replaced meanwhile
        try:
            # One rename: a processor sees the message whole or not at all.
            os.rename(entry.path, os.path.join(queue_path, target))
        except FileNotFoundError:
            continue  # requeued or purged by another run meanwhile
        for prefix in (REASON, RETRY):
            _unlink(entry.sidecar(prefix))
        print(f'requeued {entry.relpath} as {target}', file=out)
        count += 1
    print(f'{count} rejected message{"" if count == 1 else "s"} requeued',
          file=out)
    return count


def purge_rejected(queue_path, age, out, now):
    """Delete the rejected messages set aside at least *age* seconds ago
    (by their ``.reason-X``, else by their file); return their number."""
    count = 0
    for entry in _rejected(queue_path):
        try:
            rejected_at = os.lstat(entry.sidecar(REASON)).st_mtime
        except FileNotFoundError:
            rejected_at = entry.mtime  # 7.3 kept no reason
        if now - rejected_at < age or not entry.still():
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        _unlink(entry.sidecar(REASON))
        print(f'deleted {entry.relpath}, rejected'
              f' {format_age(now - rejected_at)} ago', file=out)
        count += 1
    print(f'{count} rejected message{"" if count == 1 else "s"} deleted',
          file=out)
    return count


def waiting(queue_path):
    """The number of deferred messages, waiting in ``cur/``."""
    try:
        with os.scandir(os.path.join(queue_path, 'cur')) as entries:
            return sum(1 for e in entries if not e.name.startswith('.')
                       and e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return 0
