"""The Maildir store: a mail queue in a Maildir directory, behind
`IQueueStore`.

`MaildirStore` is the only code that knows how a Maildir queue keeps its
messages; everything else (deliveries, processors, the operators'
commands) asks it.  The queue is zope.sendmail 7.3's: a message ``X`` is a
file in ``new/`` (never tried) or ``cur/`` (deferred: due at its mtime),
starting with two envelope lines (`envelope`); beside it lie the dot-files
that `names` lists -- the claim of the processor sending it (`claim`), its
``.retry-X`` and, once set aside as ``.rejected-X``, its ``.reason-X``
(`sidefiles`).  A delivery's messages are written into ``tmp/`` as it
sends them (`writer`), synced at the vote and moved into ``new/`` at the
commit (`folder`).  The due messages are one listing of ``new/`` and
``cur/`` (`names.listing`), oldest first; what is no regular file is
never opened, and said once (`notices`).  On a network file system, where
a lock proves nothing, claims are taken over by age only, and a processor
sends only while it holds the queue's processor lease (`lease`).  The
store's clock is this host's (the file server's mtimes are compared with
it, as 7.3 did).  The operators' view is `scan`'s.
"""
import heapq
import logging
import os
import stat
import threading
import time
import weakref

from zope.interface import implementer

from zope.sendmail.display import printable
from zope.sendmail.interfaces import IClaimedMessage
from zope.sendmail.interfaces import IQueueEntry
from zope.sendmail.interfaces import IQueueStore
from zope.sendmail.interfaces import QueueError
from zope.sendmail.interfaces import UnreadableMessageError
from zope.sendmail.interfaces import UnsafeQueueError
from zope.sendmail.message import message_id_of
from zope.sendmail.stores import doorbell
from zope.sendmail.stores.answers import DueMessages
from zope.sendmail.stores.answers import Status
from zope.sendmail.stores.maildir import claim as claims
from zope.sendmail.stores.maildir.envelope import EnvelopeError
from zope.sendmail.stores.maildir.envelope import format_envelope
from zope.sendmail.stores.maildir.envelope import split_envelope
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.stores.maildir.folder import sync_all
from zope.sendmail.stores.maildir.lease import ProcessorLease
from zope.sendmail.stores.maildir.leasefile import check_settings
from zope.sendmail.stores.maildir.leasefile import describe_lease
from zope.sendmail.stores.maildir.leasefile import read_lease
from zope.sendmail.stores.maildir.names import MESSAGE_DIRS
from zope.sendmail.stores.maildir.names import REASON
from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.stores.maildir.names import is_message
from zope.sendmail.stores.maildir.names import listing
from zope.sendmail.stores.maildir.names import queued_order
from zope.sendmail.stores.maildir.names import unique_name
from zope.sendmail.stores.maildir.netfs import describe
from zope.sendmail.stores.maildir.netfs import file_system
from zope.sendmail.stores.maildir.notices import Notices
from zope.sendmail.stores.maildir.notices import skip_odd
from zope.sendmail.stores.maildir.orphans import remove_orphans
from zope.sendmail.stores.maildir.queuedirs import SUBDIRS
from zope.sendmail.stores.maildir.queuedirs import check_queue_dirs
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import remove
from zope.sendmail.stores.maildir.scan import STATES
from zope.sendmail.stores.maildir.scan import scan
from zope.sendmail.stores.maildir.sidefiles import format_retry
from zope.sendmail.stores.maildir.sidefiles import fresh_state
from zope.sendmail.stores.maildir.sidefiles import read_retry
from zope.sendmail.stores.maildir.sidefiles import rejected_at


log = logging.getLogger(__name__)

LEASE_MODES = {True: 'on', False: 'off', None: 'auto',
               'auto': 'auto', 'on': 'on', 'off': 'off'}


def lease_mode(value):
    """The lease setting *value* (``'auto'``, ``'on'``, ``'off'``, or
    True, False, None for them) as one of the three words."""
    try:
        return LEASE_MODES[value]
    except (KeyError, TypeError):
        raise ValueError(f'lease must be auto, on or off, not {value!r}') \
            from None


def check_options(lease='auto', lease_timeout=120.0, lease_renew=10.0,
                  lease_margin=20.0):
    """Raise ValueError for processor settings of the store that cannot
    work (see `ProcessorLease`)."""
    lease_mode(lease)
    check_settings(lease_timeout, lease_renew, lease_margin)


def check_queue(path, create=False, shared_group=False):
    """Check that *path* is a queue directory that no one else could
    tamper with (see `queuedirs`: *shared_group* accepts one its group may
    write to), for an operator's command; raise `QueueError` saying why
    not.  With *create*, an existing empty directory becomes a queue; a
    path that does not exist is never created: a mistyped one would
    silently become an empty queue."""
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


def _mtime(entry):
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return 0.0  # sent by another processor meanwhile: order is moot


@implementer(IQueueEntry)
class Entry:
    """A message of the queue as the processor's listing found it: its
    *path* is its key and location."""

    __slots__ = ('key', 'name')

    def __init__(self, path):
        self.key = path
        self.name = os.path.basename(path)

    @property
    def location(self):
        return self.key

    def __repr__(self):
        return f'<Entry {self.key!r}>'


class _PathEntry:
    """A path yielded by a folder object of another kind (7.3's, a
    user's), looked at as the processor's listing looks at a directory's
    entries (``os.DirEntry``'s methods it uses)."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)

    def stat(self, follow_symlinks=True):
        return os.stat(self.path) if follow_symlinks else \
            os.lstat(self.path)

    def is_file(self, follow_symlinks=True):
        try:
            return stat.S_ISREG(self.stat(follow_symlinks).st_mode)
        except FileNotFoundError:
            return False


@implementer(IClaimedMessage)
class ClaimedMessage:
    """The message of a `Claim` (`claim`), as a processor sees it: see
    `IClaimedMessage`.  *now* tells the store's time."""

    def __init__(self, claim, now):
        self._claim = claim
        self._now = now
        self.key = claim.path
        self.name = claim.name
        self.rejected_as = REJECTED + claim.name
        self.message_id = None
        self._data = self._start = self._fromaddr = None
        self._retry = None

    @property
    def location(self):
        return self.key

    def __repr__(self):
        return f'<ClaimedMessage {self._claim!r}>'

    def read(self):
        try:
            data = self._claim.read()
        except FileNotFoundError:
            raise LookupError(self.key) from None
        try:
            fromaddr, toaddrs, start = split_envelope(data)
        except (EnvelopeError, ValueError) as e:  # never better next time
            # Named by its file: what it holds is not to be trusted, nor
            # quoted (EnvelopeError says what is wrong, not what is there).
            raise UnreadableMessageError(
                f'unreadable queue file {printable(self.name)}: {e}',
                f'unreadable queue file {printable(self.key)}') from None
        self._data, self._start, self._fromaddr = data, start, fromaddr
        self.message_id = message_id_of(data, start)
        # A view, not a copy: a big message is in memory once.
        return fromaddr, toaddrs, memoryview(data)[start:]

    @property
    def retry(self):
        if self._retry is None:
            try:
                mtime = self._claim.stat().st_mtime
            except FileNotFoundError:
                mtime = self._now()
            try:
                self._retry = read_retry(self.key, self.name, mtime)
            except NotRegularFileError as e:
                # Bookkeeping only: start afresh; deferring replaces it.
                log.warning('%s: %s; its attempts are counted afresh',
                            self.key, e)
                self._retry = fresh_state(self.name, mtime)
        return self._retry

    def complete(self):
        self._claim.complete()
        self._data = None

    def defer(self, retry, recipients=None):
        rewrite = None
        if recipients is not None:
            # Those who got it must not get it again: the envelope names
            # the recipients left, the message stays as it was.
            rewrite = format_envelope(self._fromaddr, recipients) + \
                memoryview(self._data)[self._start:]
        self._claim.defer(retry.next_attempt, format_retry(retry), rewrite)
        self._data = None

    def reject(self, reason):
        self._claim.move_aside(reason)
        self._data = None

    def release(self):
        self._data = None  # the message's bytes go with the claim
        return self._claim.release()


@implementer(IQueueStore)
class MaildirStore:
    """The queue in the Maildir folder *maildir* (an `IMaildir`: this
    package's `Maildir`, or a folder object of 7.3's kind, whose iteration
    is then the listing of its messages); see `IQueueStore`.

    *path* is the queue directory, by default the folder's ``path``; an
    operator's look at an empty directory that is no queue yet has a path
    and no folder.  With *durable*, the messages a delivery commits are
    synced before its vote succeeds, and ``new/`` after their move.
    *lease* (``'auto'``: on a network file system; ``'on'``; ``'off'``),
    *lease_timeout*, *lease_renew* and *lease_margin* are the processor
    lease's settings; *clock* is the store's clock (``time.time``).
    """

    #: See `IQueueStore.claim_ahead`: a claim here is a few system calls,
    #: and one claimed ahead would only be held longer.
    claim_ahead = 1

    def __init__(self, maildir, path=None, durable=True, lease='auto',
                 lease_timeout=120.0, lease_renew=10.0, lease_margin=20.0,
                 clock=time.time):
        check_options(lease, lease_timeout, lease_renew, lease_margin)
        self.maildir = maildir
        self.path = path if path is not None else getattr(
            maildir, 'path', None)
        self.name = self.path if self.path is not None else repr(maildir)
        # A folder without a path is named by itself: no other store
        # object (no delivery) shares its wake-ups.
        self.key = os.path.realpath(self.path) if self.path is not None \
            else f'{type(maildir).__name__} at {id(maildir):#x}'
        self.durable = durable
        self.lease_mode = lease_mode(lease)
        self.lease_settings = {'timeout': lease_timeout,
                               'renew': lease_renew, 'margin': lease_margin}
        self.clock = clock
        # This package's folders are listed by scanning their directory
        # (which also finds what is odd); another kind's by iterating it.
        self._iterate = maildir is not None and (
            self.path is None or type(maildir).__iter__ is not
            Maildir.__iter__)
        self.notices = Notices(log)  # what was said of odd entries
        self._lock = threading.Lock()
        self._network = None  # known once a processor asks
        self._lease = None
        self._standby_since = None
        self._waiters = weakref.WeakSet()

    def __repr__(self):
        return f'<MaildirStore {self.name!r}>'

    def now(self):
        return self.clock()

    # What a delivery writes through.

    def add(self, message_id, fromaddr, toaddrs, message):
        writer = self.maildir.newMessage()
        try:
            # Two writes, not one of the two joined: no copy of a big
            # message.
            writer.write(format_envelope(fromaddr, toaddrs))
            writer.write(message)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return (message_id, writer)

    def vote(self, items):
        if self.durable:
            sync_all([writer for message_id, writer in items])

    def finish(self, items):
        for message_id, writer in items:
            try:
                writer.commit()
            except OSError as e:
                # Cannot raise after commit; the file is still in tmp/,
                # where an operator can find it by this log line.
                log.error('message %s committed but not queued: cannot move'
                          ' %s into new/: %s', message_id, writer.path, e)
            else:
                if getattr(writer, 'replaced', None):  # tampered with
                    log.error('message %s: %s', message_id, writer.replaced)
                log.debug('message %s queued as %s', message_id,
                          getattr(writer, 'final_path', writer))
        if self.durable and items:
            try:
                self.maildir.sync_new()
            except OSError as e:
                log.error('cannot sync %s/new: %s; the last messages may be'
                          ' lost in a power failure', self.name, e)
        if items:
            # The processors of this process send them now rather than at
            # their next poll.
            doorbell.ring(self.key)

    def discard(self, items):
        for message_id, writer in items:
            writer.abort()

    # What a processor asks.

    @property
    def network(self):
        """Whether the queue is on a network file system (where a lock
        proves nothing about its holder); None while unknown."""
        self._setup()
        return self._network

    @property
    def lease(self):
        """The `ProcessorLease` this store's processor must hold to send,
        or None (on a local file system, unless forced)."""
        self._setup()
        return self._lease

    @property
    def stale_after(self):
        """The age after which a claim left behind is taken over whatever
        its lock says (a network file system's), or None."""
        return self.lease_settings['timeout'] if self.network else None

    def _setup(self):
        # Once, when a processor first asks: a delivery never needs it.
        if self._network is not None:
            return
        with self._lock:
            if self._network is not None:
                return
            fs = file_system(self.path) if self.path is not None else None
            network = fs is not None and fs.network
            if self.path is not None and (self.lease_mode == 'on' or (
                    network and self.lease_mode == 'auto')):
                self._lease = ProcessorLease(self.path,
                                             **self.lease_settings)
                self._lease.on_acquire = self._wake_waiters
            self._network = network

    def acquire(self):
        lease = self.lease
        if lease is None:
            return True
        lease.start()
        if lease.acquire():
            self._standby_since = None
            return True
        return False

    def may_send(self):
        lease = self.lease
        return lease is None or lease.may_send()

    def standby_wait(self, stopping):
        lease = self.lease
        if lease is None or lease.seen_renewal:
            return False  # a live holder is not waited for
        now = time.monotonic()
        if self._standby_since is None:
            self._standby_since = now
        # Past this, the holder would have been taken over if it were dead.
        if now - self._standby_since >= 2 * lease.timeout:
            return False
        return not stopping.wait(min(1.0, lease.renew))

    def _listing(self):
        """``(sub, entry)`` of every entry that may be a message."""
        if not self._iterate:
            for sub, entry in listing(self.path):
                if is_message(entry.name):
                    yield sub, entry
            return
        for path in self.maildir:
            entry = _PathEntry(path)
            yield os.path.basename(os.path.dirname(path)), entry

    def due(self, limit=None):
        now = self.now()
        count = 0
        next_due = None
        present = set()

        def candidates():
            nonlocal count, next_due
            for sub, entry in self._listing():
                present.add(entry.path)
                if skip_odd(self.notices, self.name, sub, entry):
                    continue
                if sub == 'cur':
                    try:
                        due_at = entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue  # sent by another processor meanwhile
                    if due_at > now:
                        if next_due is None or due_at < next_due:
                            next_due = due_at
                        continue
                count += 1
                yield queued_order(entry.name,
                                   lambda: _mtime(entry)), entry.path

        if limit is None:
            chosen = sorted(candidates())
        else:
            chosen = heapq.nsmallest(limit, candidates())
        self.notices.retain(present)
        return DueMessages([Entry(path) for key, path in chosen],
                           count > len(chosen), next_due)

    def claim(self, entry):
        # The strategy chosen once by the claim module: flock, or 7.3's
        # links where there is no fcntl.
        held = claims.claim(entry.key, self.stale_after, self.notices)
        if held is not None and not held.due(self.now()):
            # Deferred by another processor since the listing (its cached
            # mtime may predate that, on NFS).
            held = held.release()
        return None if held is None else ClaimedMessage(held, self.now)

    def claim_many(self, entries):
        return [self.claim(entry) for entry in entries]

    def present(self, keys):
        return {key for key in keys if os.path.exists(key)}

    def waiter(self):
        waiter = doorbell.Waiter(self.key)
        self._waiters.add(waiter)
        return waiter

    def _wake_waiters(self):
        for waiter in list(self._waiters):
            waiter.wake()

    def housekeeping(self):
        if self.path is None:
            return  # a folder object of another kind tidies itself
        now = time.time()
        cleanup = getattr(self.maildir, 'cleanup', None)
        if cleanup is not None:  # this package's Maildir: tmp/
            cleanup(now=now)
        for sub in MESSAGE_DIRS:
            remove_orphans(os.path.join(self.path, sub), now=now)

    def close(self, timeout=None):
        lease = self._lease
        if lease is not None:
            lease.stop(timeout)  # a standby may take over at once

    # What an operator asks.

    def status(self):
        if self.maildir is not None and not all(
                os.path.isdir(os.path.join(self.path, sub))
                for sub in ('new', 'cur')):
            # Removed under an open store: an empty listing would look like
            # an empty queue to an operator and to the metrics.
            raise QueueError(f'queue {self.path}: its directory is gone'
                             f' (no new/ and cur/ in it)')
        odd = []
        entries = scan(self.path, odd=odd)
        counts = dict.fromkeys(STATES, 0)
        for entry in entries:
            counts[entry.state] += 1
        deferred = [e.mtime for e in entries if e.state == 'deferred']
        queued = [e.queued for e in entries if e.state != 'rejected']
        waiting = sum(1 for e in entries if e.state != 'rejected' and
                      e.relpath.startswith('cur' + os.sep))
        details = [('file system', describe(file_system(self.path))),
                   ('lease', describe_lease(read_lease(self.path),
                                            self.now()))]
        return Status(counts, waiting, min(deferred, default=None),
                      min(queued, default=None), len(odd), details)

    def entries(self):
        return scan(self.path, read=True)

    def others(self):
        odd = []
        scan(self.path, odd=odd)
        return odd

    def _rejected(self):
        return [e for e in scan(self.path) if e.state == 'rejected']

    def requeue_rejected(self):
        done = []
        for entry in self._rejected():
            target = os.path.join('new', unique_name())
            if not entry.still():
                continue  # requeued, purged or replaced meanwhile
            try:
                # One rename: a processor sees the message whole or not at
                # all.
                os.rename(entry.path, os.path.join(self.path, target))
            except FileNotFoundError:
                continue  # requeued or purged by another run meanwhile
            for prefix in (REASON, RETRY):
                remove(entry.sidecar(prefix))
            done.append((entry.relpath, target))
        return done

    def purge_rejected(self, age, now=None):
        now = self.now() if now is None else now
        done = []
        for entry in self._rejected():
            when = rejected_at(entry.path, entry.name, entry.mtime)
            if now - when < age or not entry.still():
                continue
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            remove(entry.sidecar(REASON))
            done.append((entry.relpath, when))
        return done
