"""The PostgreSQL store: `PostgresStore`, `open_postgres_store` and
`create_schema`.

The store keeps a queue's messages as rows of one table (`sql` has the
schema and every statement), reached through a small pool of connections
per store object (`pool`).  A delivery's messages stay in memory until its
transaction votes; the vote inserts them all and notifies the queue in one
statement, one round trip (`vote`: a vote whose answer was lost is found
out by its token).  A processor lists the due rows, claims them with
``FOR UPDATE SKIP LOCKED`` and a lease, a few at a time for each of its
connections (`claim_many`, `claimed`; the leases kept alive by `lease`;
what was sent recorded in groups by `completions`), and is woken by
notifications (`listener`).  Times are the database server's clock:
`PostgresStore.now` is this host's clock corrected by the server's
offset, measured now and then.  Every host's processors work at once.
"""
import logging
import threading
import time
import uuid
import weakref

from zope.interface import implementer

from zope.sendmail.interfaces import IListedMessage
from zope.sendmail.interfaces import IQueueEntry
from zope.sendmail.interfaces import IQueueStore
from zope.sendmail.interfaces import QueueError
from zope.sendmail.message import message_id_of
from zope.sendmail.stores import doorbell
from zope.sendmail.stores.answers import DueMessages
from zope.sendmail.stores.answers import Status
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.claimed import MAX_TEXT
from zope.sendmail.stores.postgresql.claimed import ClaimedMessage
from zope.sendmail.stores.postgresql.claimed import check_envelope
from zope.sendmail.stores.postgresql.claimed import retry_state
from zope.sendmail.stores.postgresql.completions import Completions
from zope.sendmail.stores.postgresql.lease import LeaseKeeper
from zope.sendmail.stores.postgresql.listener import Listener
from zope.sendmail.stores.postgresql.listener import Waiter
from zope.sendmail.stores.postgresql.pool import CommitUnknown
from zope.sendmail.stores.postgresql.pool import ConnectionPool
from zope.sendmail.stores.postgresql.pool import said
from zope.sendmail.stores.postgresql.url import QueueURL
from zope.sendmail.stores.postgresql.vote import Votes


log = logging.getLogger(__name__)

#: How often (seconds) the offset of the server's clock is measured again.
CLOCK_REFRESH = 300.0
#: How many messages a processor's connection claims at once (one
#: statement, one round trip for them all; see `sql.CLAIM`).
CLAIM_AHEAD = 10
#: The biggest message such a claim brings along (bytes): a bigger one is
#: read when it is sent, so that the claims a connection holds cost at
#: most ``CLAIM_AHEAD`` times this in memory.
CLAIM_AHEAD_INLINE = 256 * 1024
#: What a listing shows of a row: recipients, head bytes (for the id).
LIST_RECIPIENTS = 50
LIST_HEAD = 16384
#: The idle connections of each kind (waiting for the disk at commit, or
#: not) a store object keeps by default: one for each of a processor's
#: connection threads (8 by default), which take one for every claim and
#: one for every disposal, and one for its pass's listing or a delivery's
#: vote.  Fewer, and a busy pass opens (and closes) a database session
#: every few messages.
POOL_SIZE = 10
#: The store options of the Maildir processor lease, taken and ignored
#: here: every processor of a PostgreSQL queue works at once.
_MAILDIR_LEASE = ('lease', 'lease_margin')


def check_options(lease_timeout=60.0, lease_renew=None, connect_timeout=10.0,
                  statement_timeout=60.0, pool_size=POOL_SIZE,
                  max_message_size=100 * 2 ** 20, durable_outcomes=True,
                  lease=None, lease_margin=None):
    """Raise ValueError for store options that cannot work (see
    `PostgresStore`)."""
    if not lease_timeout > 0:
        raise ValueError(f'lease_timeout must be positive, not'
                         f' {lease_timeout!r}')
    if lease_renew is not None and not 0 < lease_renew < lease_timeout:
        raise ValueError(f'lease_renew must be positive and less than'
                         f' lease_timeout, not {lease_renew!r}')
    for name, value in (('connect_timeout', connect_timeout),
                        ('statement_timeout', statement_timeout),
                        ('pool_size', pool_size),
                        ('max_message_size', max_message_size)):
        if not value > 0:
            raise ValueError(f'{name} must be positive, not {value!r}')


class Pending:
    """A message of a transaction being committed, in memory until the
    vote (`PostgresStore.add`)."""

    __slots__ = ('message_id', 'fromaddr', 'toaddrs', 'message', 'row_id')

    def __init__(self, message_id, fromaddr, toaddrs, message):
        self.message_id = message_id
        self.fromaddr = fromaddr
        self.toaddrs = toaddrs
        self.message = message
        self.row_id = None  # once the vote inserted it

    def __repr__(self):
        return f'<Pending {self.message_id} row {self.row_id}>'


@implementer(IQueueEntry)
class Entry:
    """A due row as a listing found it: keyed by its id and its due time
    (a deferred row has a new key)."""

    __slots__ = ('key', 'row_id', 'name', 'location')

    def __init__(self, store_name, row_id, due):
        self.key = (row_id, due)
        self.row_id = row_id
        self.name = f'pg-{row_id}'
        self.location = f'{store_name}#{row_id}'

    def __repr__(self):
        return f'<Entry {self.location}>'


@implementer(IListedMessage)
class ListedMessage:
    """A row as an operator sees it; see `IListedMessage`."""

    def __init__(self, store_name, row):
        (row_id, self.state, self.queued, attempts, self.next_attempt,
         self.last_error, self.reason, self.fromaddr, toaddrs, count,
         message_id, head, no_message) = row
        self.key = row_id
        self.name = f'pg-{row_id}'
        self.location = f'{store_name}#{row_id}'
        self.attempts = min(max(attempts or 0, 0), 10 ** 6)
        self.problem = check_envelope(self.fromaddr, toaddrs) or (
            'no message' if no_message else None)
        if isinstance(toaddrs, list):
            toaddrs = [a for a in toaddrs if isinstance(a, str)]
            if count and count > len(toaddrs):
                toaddrs.append(f'... {count - len(toaddrs)} more')
        self.toaddrs = toaddrs
        if message_id is None and head is not None:
            message_id = message_id_of(bytes(head))
        self.message_id = message_id

    def __repr__(self):
        return f'<ListedMessage {self.state} {self.location}>'


@implementer(IQueueStore)
class PostgresStore:
    """The queue named by *url* (a `QueueURL`, or its text) in a
    PostgreSQL database; see `IQueueStore` and the module.

    With *create*, the schema is created at first use when missing;
    without, a database without it is a `QueueError`.  Options:
    *lease_timeout* (seconds a claim is held without renewal; the bound of
    a takeover from a live but cut-off processor), *lease_renew* (how
    often the leases held are renewed; a third of *lease_timeout* by
    default), *connect_timeout*, *statement_timeout* (seconds),
    *pool_size* (idle connections kept of each kind, `POOL_SIZE` by
    default: enough for a processor's default connections),
    *max_message_size* (bytes: a bigger row is set aside unread).
    *durable_outcomes*: what became of a message (sent, deferred, set
    aside) is committed as the server is configured, waiting for its
    disk, so that a crash of the server sends again only the messages in
    flight; False commits it without waiting (faster; a crash of the
    server may then send the last messages sent once more -- it never
    loses one).  Claims and lease renewals never wait: every claim ends
    with the server's sessions anyway.  *lease* and *lease_margin*, the
    Maildir processor lease's, are accepted and mean nothing here.
    """

    #: See `IQueueStore.claim_ahead`: a claim is a round trip to the
    #: server, and so are ten.
    claim_ahead = CLAIM_AHEAD

    def __init__(self, url, create=True, lease_timeout=60.0,
                 lease_renew=None, connect_timeout=10.0,
                 statement_timeout=60.0, pool_size=POOL_SIZE,
                 max_message_size=100 * 2 ** 20, durable_outcomes=True,
                 lease=None, lease_margin=None):
        check_options(lease_timeout, lease_renew, connect_timeout,
                      statement_timeout, pool_size, max_message_size)
        self.durable_outcomes = bool(durable_outcomes)
        self.url = url if isinstance(url, QueueURL) else QueueURL(url)
        self.name = self.url.masked
        self.key = self.url.key
        self.queue = self.url.queue
        self.create = create
        self.lease_timeout = float(lease_timeout)
        self.lease_renew = float(lease_renew or lease_timeout / 3)
        self.max_message_size = int(max_message_size)
        self.pool = ConnectionPool(
            self.url.conninfo, self.name, size=pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout)
        self.votes = Votes(self.pool, self.queue, self.name)
        self.completions = Completions(self.pool, self.keeper_discard,
                                       self.durable_outcomes, self.name)
        self._lock = threading.Lock()
        self._schema_checked = False
        self._offset = 0.0
        self._clock_checked = None
        self._keeper = None
        self._listener = None
        self._waiters = weakref.WeakSet()
        self._down = False  # the processor's listing said so already

    def __repr__(self):
        return f'<PostgresStore {self.name!r}>'

    # The database.

    def _run(self, statement, params, fetch='all', durable=True,
             binary=False):
        """One statement, a transaction of its own (see
        `ConnectionPool.run`), once the schema is known to be there."""
        if not self._schema_checked:
            self.ensure_schema()
        return self.pool.run(statement, params, fetch=fetch, durable=durable,
                             binary=binary)

    def ensure_schema(self):
        """Make sure the schema is there (creating it with *create*, under
        a lock that makes a second process wait and then find it); return
        whether it was created.  `QueueError` for a schema of a newer
        version, or none when it may not be created."""
        def work(conn):
            conn.execute(sql.LOCK_SCHEMA, sql.SCHEMA_LOCK)
            if conn.execute(sql.SCHEMA_VERSION).fetchone()[0]:
                version = conn.execute(sql.READ_VERSION).fetchone()[0]
                if version is None or version > sql.VERSION:
                    raise QueueError(
                        f'queue {self.name}: the database holds schema'
                        f' version {version} of zope.sendmail\'s queue;'
                        f' this version knows {sql.VERSION}')
                if not conn.execute(sql.VOTES_PRESENT).fetchone()[0]:
                    # A database of version 1 made before votes had
                    # tokens (not released: no new version for it).
                    if not self.create:
                        raise QueueError(
                            f'queue {self.name}: the database\'s queue has'
                            f' no {sql.VOTES_TABLE} table (add it with'
                            f' zope-sendmail --create-schema)')
                    conn.execute(sql.VOTES_SCHEMA)
                    return True
                return False
            if not self.create:
                raise QueueError(
                    f'queue {self.name}: the database has no zope.sendmail'
                    f' queue (create it with zope-sendmail --create-schema)')
            for statement in sql.SCHEMA:
                conn.execute(statement)
            return True
        created = self.pool.transaction(work)
        if created:
            log.info('queue %s: created the schema (version %d)', self.name,
                     sql.VERSION)
        self._schema_checked = True
        return created

    def _unreachable(self, what, error):
        """`QueueError` for an operator: the database did not answer."""
        return QueueError(f'queue {self.name}: cannot {what}: {said(error)}')

    def now(self):
        checked = self._clock_checked
        if checked is None or time.monotonic() - checked > CLOCK_REFRESH:
            self._clock_checked = time.monotonic()
            self._measure_clock()
        return time.time() + self._offset

    def _measure_clock(self):
        psycopg = self.pool.psycopg
        try:
            before = time.time()
            server = self.pool.run(sql.CLOCK, fetch='one',
                                   durable=None)[0]
            after = time.time()
        except (psycopg.Error, CommitUnknown) as e:
            # now() never raises: the offset measured last (or none) stays
            # until the next measure.
            log.debug('queue %s: cannot read the server\'s clock: %s',
                      self.name, said(e))
            return
        if after - before < 5:  # a measure that took long says little
            self._offset = server - (before + after) / 2

    # What a delivery writes through.

    def add(self, message_id, fromaddr, toaddrs, message):
        return Pending(message_id, str(fromaddr),
                       [str(a) for a in toaddrs], bytes(message))

    def vote(self, items):
        items = [item for item in items if item.row_id is None]
        if not items:
            return
        if not self._schema_checked:
            self.ensure_schema()
        ids = self.votes.cast([(item.message_id, item.fromaddr,
                                item.toaddrs, item.message)
                               for item in items])
        # The ids are all there unless the vote's answer was lost and its
        # token deleted by hand: rows then unknown, not removed by discard.
        for item, row_id in zip(items, ids):
            item.row_id = row_id
        for item in items:
            item.message = None  # in the database now: no second copy

    def finish(self, items):
        if items:
            # This process's processors go at once; others have been
            # notified by the vote.
            doorbell.ring(self.key)

    def discard(self, items):
        ids = [item.row_id for item in items if item.row_id is not None]
        for item in items:
            item.message = None
        if not ids:
            return
        # Voted, then the transaction aborted after all: the rows must go.
        # (A processor may have sent one meanwhile: no two-phase commit.)
        try:
            self._run(f'DELETE FROM {sql.TABLE} WHERE id = ANY(%(ids)s)',
                      {'ids': ids}, fetch='count')
        except Exception as e:
            # discard() must not raise (it runs in tpc_abort).
            log.error('queue %s: cannot remove the rows %s of an aborted'
                      ' transaction (%s): they will be sent', self.name,
                      ids, said(e))
        for item in items:
            item.row_id = None

    # What a processor asks.

    def _keeper_started(self):
        with self._lock:
            if self._keeper is None:
                self._keeper = LeaseKeeper(self.pool, self.lease_timeout,
                                           self.lease_renew, self.name)
            keeper = self._keeper
        keeper.start()
        return keeper

    def keeper_discard(self, token):
        keeper = self._keeper
        if keeper is not None:
            keeper.discard(token)

    def acquire(self):
        self._keeper_started()
        return True

    def may_send(self):
        keeper = self._keeper
        return keeper is None or keeper.may_send()

    def standby_wait(self, stopping):
        return False  # never a standby

    def _settled(self):
        """Wait until what this object's claims sent is recorded (see
        `completions`), as long as a group's statement may take; say so
        if it was not (the answer may then count it still)."""
        if not self.completions.flush(
                2 * (self.pool.statement_timeout or 60.0)):
            log.warning('queue %s: messages sent are not recorded yet (the'
                        ' database is slow to answer)', self.name)

    def due(self, limit=None):
        self._settled()  # what was sent is not due
        psycopg = self.pool.psycopg
        params = {'queue': self.queue,
                  'limit': None if limit is None else limit + 1}
        try:
            rows = self._run(sql.DUE, params, durable=None)
        except psycopg.Error as e:
            # The database's condition: nothing is due until it answers;
            # said once per outage, the next poll tries again.
            if not self._down:
                log.warning('queue %s: cannot list the due messages: %s',
                            self.name, said(e))
                self._down = True
            return DueMessages([], False, None)
        if self._down:
            log.info('queue %s: the database answers again', self.name)
            self._down = False
        next_due = rows[0][2] if rows else None
        rows = [(row_id, due) for row_id, due, later in rows
                if row_id is not None]
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if more else rows
        return DueMessages([Entry(self.name, row_id, due)
                            for row_id, due in rows], more, next_due)

    def claim(self, entry):
        return self.claim_many([entry])[0]

    def claim_many(self, entries):
        entries = list(entries)
        if not entries:
            return []
        psycopg = self.pool.psycopg
        keeper = self._keeper_started()
        holder = keeper.current()
        if holder is None:
            # The database is unreachable: said by the keeper.
            return [None] * len(entries)
        # A new token for each row at its first mention (None after: a row
        # asked for twice is claimed once).
        tokens, asked = [], {}
        for entry in entries:
            token = None if entry.row_id in asked else uuid.uuid4()
            if token is not None:
                asked[entry.row_id] = token
            tokens.append(token)
        params = {'ids': list(asked), 'tokens': list(asked.values()),
                  'queue': self.queue, 'holder': holder,
                  'lease': self.lease_timeout, 'max_text': MAX_TEXT,
                  'max_size': self.max_message_size,
                  # Several claims at once bring small messages along, so
                  # that what a connection holds stays bounded; a bigger
                  # one is read when it is sent.
                  'max_inline': self.max_message_size if len(asked) == 1
                  else min(self.max_message_size, CLAIM_AHEAD_INLINE)}
        for token in asked.values():
            keeper.add(token)  # renewed from now on, if it is ours
        try:
            # Binary: a bytea comes as it is, not as hex twice its size.
            rows = self._run(sql.CLAIM, params, durable=False, binary=True)
        except psycopg.Error as e:
            for token in asked.values():
                keeper.discard(token)
            if isinstance(e, psycopg.OperationalError):
                # The database's condition (perhaps the claims are ours, if
                # the connection was lost on the way back: their leases
                # then run out, unrenewed).  The keeper says so once, and
                # no message is started until it renews again.
                keeper.failed(e)
                log.debug('queue %s: cannot claim %s: %s', self.name,
                          _rows(entries), said(e))
            else:
                # Refused by the server for these rows' sake (a value it
                # will not take): the messages wait, and this is said each
                # time.
                log.warning('queue %s: cannot claim %s: %s', self.name,
                            _rows(entries), said(e))
            return [None] * len(entries)
        found = {row[0]: row[1:] for row in rows}
        claims = []
        for entry, token in zip(entries, tokens):
            row = None if token is None else found.get(entry.row_id)
            if row is None:
                # Gone, set aside, deferred since, held by a live
                # processor, or in another's transaction right now (or
                # asked for already).
                if token is not None:
                    keeper.discard(token)
                claims.append(None)
            else:
                claims.append(ClaimedMessage(
                    self, entry.key, entry.row_id, token,
                    retry_state(*row[:5]), row[5:]))
        return claims

    def present(self, keys):
        self._settled()
        keys = set(keys)
        ids = [key[0] for key in keys]
        if not ids:
            return set()
        try:
            rows = self._run(sql.PRESENT, {'queue': self.queue, 'ids': ids},
                             durable=None)
        except self.pool.psycopg.Error as e:
            # The database's condition: remembering messages a little
            # longer is harmless; the listing says it is down.
            log.debug('queue %s: cannot tell which messages are left: %s',
                      self.name, said(e))
            return keys
        return {tuple(row) for row in rows} & keys

    def waiter(self):
        waiter = Waiter(self.key)
        with self._lock:
            self._waiters.add(waiter)
            if self._listener is None:
                self._listener = Listener(
                    lambda: self.pool.connect(statement_timeout=False),
                    self.queue, self._wake_waiters, self.name)
            listener = self._listener
        # Listening takes moments; a database that does not answer must
        # not hold up the processor's start for long: it polls meanwhile.
        listener.start(timeout=min(self.pool.connect_timeout, 2.0))
        return waiter

    def _wake_waiters(self):
        for waiter in list(self._waiters):
            waiter.wake()

    def housekeeping(self):
        psycopg = self.pool.psycopg
        try:
            cleared = self._run(sql.CLEAR_DEAD_LEASES, {'queue': self.queue},
                                durable=False)
        except psycopg.Error as e:
            log.warning('queue %s: no housekeeping: %s', self.name,
                        said(e))
            return
        if cleared:
            log.info('queue %s: cleared the claims of %d message(s) left by'
                     ' processors that are gone', self.name, len(cleared))
        try:
            self.votes.expire()
        except psycopg.Error as e:
            # Old tokens wait for the next housekeeping: harmless.
            log.warning('queue %s: cannot delete the old votes\' tokens:'
                        ' %s', self.name, said(e))

    def close(self, timeout=None):
        with self._lock:
            listener, self._listener = self._listener, None
            keeper, self._keeper = self._keeper, None
        # What was sent is recorded first, while the claims still hold.
        self.completions.close(timeout)
        if listener is not None:
            listener.stop(timeout)
        if keeper is not None:
            keeper.stop(timeout)
        self.pool.close()

    # What an operator asks.

    def _ask(self, what, statement, params, fetch='all'):
        self._settled()  # what this object sent is gone
        try:
            return self._run(statement, params, fetch)
        except self.pool.psycopg.Error as e:
            raise self._unreachable(what, e) from e

    def status(self):
        row = self._ask('read the status', sql.STATUS,
                        {'queue': self.queue}, 'one')
        sending, queued, deferred, rejected, waiting, next_attempt, \
            oldest = row
        counts = {'sending': sending, 'queued': queued,
                  'deferred': deferred, 'rejected': rejected}
        details = [('database', self.name),
                   ('leases', f'{self.lease_timeout:g} s, renewed every'
                              f' {self.lease_renew:g} s')]
        return Status(counts, waiting, next_attempt, oldest, 0, details)

    def entries(self):
        rows = self._ask('list the messages', sql.ENTRIES, {
            'queue': self.queue, 'max_text': MAX_TEXT,
            'max_recipients': LIST_RECIPIENTS, 'max_head': LIST_HEAD})
        return [ListedMessage(self.name, row) for row in rows]

    def others(self):
        return []  # a table holds nothing but messages

    def requeue_rejected(self):
        rows = self._ask('requeue', sql.REQUEUE, {'queue': self.queue,
                                                  'channel': sql.CHANNEL})
        if rows:
            doorbell.ring(self.key)
        return [(f'{self.name}#{old}', f'{self.name}#{new}')
                for old, new, notified in rows]

    def purge_rejected(self, age, now=None):
        now = self.now() if now is None else now
        rows = self._ask('purge', sql.PURGE, {'queue': self.queue,
                                              'before': now - age})
        return [(f'{self.name}#{row_id}', when) for row_id, when in rows]


def open_postgres_store(url, *, create=True, **options):
    """The `PostgresStore` of the queue named by *url* (text starting with
    ``postgresql:`` or ``postgres:``); see `PostgresStore` for *create*
    and *options*.  Nothing is asked of the database until the store is
    used.  `QueueError` when psycopg is missing (naming the extra to
    install) or the URL cannot name a queue."""
    return PostgresStore(url, create=create, **options)


def create_schema(url):
    """Create the schema of zope.sendmail's queues in the database of
    *url* if it is missing; return whether it was created.  `QueueError`
    when the database cannot be reached or holds a newer schema."""
    store = PostgresStore(url, create=True)
    try:
        return store.ensure_schema()
    except (store.pool.psycopg.Error, CommitUnknown) as e:
        raise store._unreachable('create the schema', e) from e
    finally:
        store.close()


def _rows(entries):
    """The rows of *entries*, for a log line: a few ids and a count."""
    ids = [str(entry.row_id) for entry in entries]
    more = f' and {len(ids) - 3} more' if len(ids) > 3 else ''
    return f'row{"s" * (len(ids) > 1)} {", ".join(ids[:3])}{more}'
