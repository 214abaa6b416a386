"""What an operator sees and does to a mail queue.

This module owns the ``zope-sendmail`` program's operations on a queue,
as text: the check that what was named is a queue (`check_queue`), the
status view (`status`), the listing of messages (`listing`), putting
rejected messages back into the queue (`requeue_rejected`) and deleting old
ones (`purge_rejected`).  It asks the queue's store (`IQueueStore`: its
status, entries, others, requeue_rejected, purge_rejected) and formats
what the store says; how the queue keeps its messages is the store's
business.  A processor may run meanwhile: messages vanishing under a
reader are skipped, and only rejected messages, which no processor
touches, are ever moved or deleted.  Anything else the queue holds is
shown as such, never opened nor followed.  Each operation takes a store,
or a queue for `open_store` (an existing one: an operator's command never
makes one).
"""
import contextlib
import re
import time

from zope.sendmail.display import printable
from zope.sendmail.interfaces import IQueueStore
from zope.sendmail.interfaces import QueueError  # noqa: F401 (raised here)
from zope.sendmail import stores
from zope.sendmail.stores import open_store


_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}
_AGE = re.compile(r'(\d+(?:[.]\d+)?)\s*([smhdw]?)')


def check_queue(path, create=False, shared_group=False):
    """Check that *path* is a queue that no one else could tamper with
    (*shared_group* accepts one its group may write to); with *create*,
    make an existing empty directory one (a path that does not exist is
    never created: a mistyped one would silently become an empty queue).
    Raises `QueueError` saying why not."""
    open_store(path, must_exist=True, create=create,
               shared_group=shared_group).close()


def create_schema(queue):
    """Create the tables of the PostgreSQL queue *queue* (a URL) unless
    they are there; return whether it created them."""
    return stores.create_schema(queue)


@contextlib.contextmanager
def _store(queue):
    """The store of *queue*: itself when it is one; else opened for the
    operation, and closed after it (its connections, for a database)."""
    if IQueueStore.providedBy(queue):
        yield queue
        return
    store = open_store(queue, must_exist=True, create=False)
    try:
        yield store
    finally:
        store.close()


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


def status(queue, out, now):
    """Print how many messages are in each state, when the next deferred
    one is due and how old the oldest waiting one is."""
    with _store(queue) as store:
        found = store.status()
    counts = found.counts
    lines = [('queue', store.name)] + list(found.details) + [
        ('queued', counts['queued']), ('being sent', counts['sending'])]
    text = str(counts['deferred'])
    if counts['deferred']:
        text += ', next attempt ' + _when(found.next_attempt, now)
    lines.append(('deferred', text))
    lines.append(('rejected', counts['rejected']))
    if found.others:
        lines.append(('not messages', f'{found.others} (see --list)'))
    if found.oldest is not None:
        lines.append(('oldest message',
                      f'queued {format_age(now - found.oldest)} ago'))
    for label, value in lines:
        print(f'{label + ":":16}{printable(value)}', file=out)


def listing(queue, out, now):
    """Print every message: where it is, its state, envelope, Message-Id
    and, as the case may be, attempts, next attempt, last error, reason."""
    with _store(queue) as store:
        entries = store.entries()
        others = store.others()
    for entry in entries:
        state = entry.state
        if entry.attempts:
            state += f', {entry.attempts} attempt' + (
                's' if entry.attempts > 1 else '')
        # Everything shown comes from the queue, escaped.
        print(printable(entry.location), file=out)
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
    for location, kind in sorted(others):
        # Its name may be anyone's choice: escaped, as everything shown.
        print(f'{printable(location)}\n  not a message: {kind}, never read'
              f' nor followed (remove it)', file=out)
    print(f'{len(entries)} message{"" if len(entries) == 1 else "s"}',
          file=out)


def requeue_rejected(queue, out):
    """Put every rejected message back into the queue as a new message (a
    new name, so its age and attempts start afresh); return their number.
    """
    with _store(queue) as store:
        done = store.requeue_rejected()
    for before, after in done:
        print(f'requeued {printable(before)} as {printable(after)}',
              file=out)
    count = len(done)
    print(f'{count} rejected message{"" if count == 1 else "s"} requeued',
          file=out)
    return count


def purge_rejected(queue, age, out, now):
    """Delete the rejected messages set aside at least *age* seconds ago;
    return their number."""
    with _store(queue) as store:
        done = store.purge_rejected(age, now)
    for location, rejected_at in done:
        print(f'deleted {printable(location)}, rejected'
              f' {format_age(now - rejected_at)} ago', file=out)
    count = len(done)
    print(f'{count} rejected message{"" if count == 1 else "s"} deleted',
          file=out)
    return count


def waiting(queue):
    """The number of messages waiting for a later attempt."""
    with _store(queue) as store:
        return store.status().waiting
