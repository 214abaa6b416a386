"""The PostgreSQL store's schema and every statement it runs, in one place.

One table holds the messages of every queue of a database
(``zope_sendmail_queue``, a row per message, ``queue`` naming its queue);
``zope_sendmail_schema`` records the schema's version, and
``zope_sendmail_votes`` the last votes (see below).  A message is

- *queued* or *deferred* (``rejected_at`` NULL): due at ``due_at``; a
  deferred one has failed ``attempts`` times (``last_attempt``,
  ``last_error``);
- *being sent* while a processor holds its lease: ``lease_token`` (a new
  uuid at each claim: only its holder may complete, defer, reject or
  release it), ``lease_holder`` (the holder's id, which its processor
  holds a session-level advisory lock on for as long as its session
  lives: a dead processor's claims are taken over at once) and
  ``lease_expires`` (the bound for a holder alive but cut off or paused);
- *rejected*: set aside at ``rejected_at`` for ``reason``, never tried
  again, until an operator requeues or purges it.

Every time is the database's clock (``clock_timestamp()``, not ``now()``:
a transaction's start is not when it decides), returned to Python as
seconds since the epoch.  ``claims`` counts the claims of a message (the
attempts started, whether or not they ended), for an operator's eyes.
Statements take ``%(name)s`` parameters (psycopg's).

``zope_sendmail_votes`` holds the tokens of the last votes: a delivery's
vote writes its messages and a new token (with the rows' ids) in one
statement, so that a vote whose answer was lost on the way can be found
out exactly (`zope.sendmail.stores.postgresql.vote`).  It holds only the
votes in flight and the last ones: a store object's votes delete the
tokens of its earlier ones, a few at a time, and housekeeping those older
than an hour.
"""

#: The version of the schema this module creates and works with.
VERSION = 1
TABLE = 'zope_sendmail_queue'
VERSION_TABLE = 'zope_sendmail_schema'
VOTES_TABLE = 'zope_sendmail_votes'
#: The channel every queue's commits are notified on; the payload is the
#: queue's name (a channel per queue would need a name per queue within
#: PostgreSQL's 63 bytes).
CHANNEL = 'zope_sendmail'
#: The advisory lock (two int4 keys, a space of its own) that serialises
#: creating the schema between processes.
SCHEMA_LOCK = (0x7a73656e, 1)  # 'zsen'

SCHEMA = [
    f"""
    CREATE TABLE {VERSION_TABLE} (
        version integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    f"""
    CREATE TABLE {TABLE} (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        message_id text,
        fromaddr text,
        toaddrs text[],
        message bytea,
        queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        due_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        attempts integer NOT NULL DEFAULT 0,
        claims integer NOT NULL DEFAULT 0,
        last_attempt timestamptz,
        last_error text,
        rejected_at timestamptz,
        reason text,
        lease_token uuid,
        lease_holder bigint,
        lease_expires timestamptz
    )""",
    # The due query: a queue's messages not set aside, by due time.
    f"""
    CREATE INDEX {TABLE}_due ON {TABLE} (queue, due_at, id)
        WHERE rejected_at IS NULL""",
    # What operators ask of rejected messages (requeue, purge by age).
    f"""
    CREATE INDEX {TABLE}_rejected ON {TABLE} (queue, rejected_at)
        WHERE rejected_at IS NOT NULL""",
    f"INSERT INTO {VERSION_TABLE} (version) VALUES ({VERSION})",
]
# The votes' tokens: created with the rest, or alone in a database of
# version 1 made before it came (version 1 is not released yet).
VOTES_SCHEMA = f"""
    CREATE TABLE {VOTES_TABLE} (
        token uuid PRIMARY KEY,
        voted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        ids bigint[]
    )"""
SCHEMA.append(VOTES_SCHEMA)

LOCK_SCHEMA = "SELECT pg_advisory_xact_lock(%s, %s)"
SCHEMA_VERSION = f"""
    SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL AS present"""
VOTES_PRESENT = f"SELECT to_regclass('{VOTES_TABLE}') IS NOT NULL"
READ_VERSION = f"SELECT max(version) FROM {VERSION_TABLE}"

# The database's clock, in seconds since the epoch.
CLOCK = "SELECT extract(epoch FROM clock_timestamp())::float8"

# -- A delivery's vote: the rows of one transaction, its token, and one
# notification (PostgreSQL delivers one per transaction for one payload).

#: The most messages a vote writes in one statement; a bigger transaction
#: writes them in several statements of one database transaction.
VOTE_ROWS = 100


def _values(count):
    """The VALUES of *count* messages: parameters queue (one for all),
    message_id<n>, fromaddr<n>, toaddrs<n>, message<n>."""
    return ', '.join(
        f'(%(queue)s, %(message_id{n})s, %(fromaddr{n})s, %(toaddrs{n})s,'
        f' %(message{n})s)' for n in range(count))


def vote(count, settled=True):
    """The statement of a vote of *count* messages (at most `VOTE_ROWS`),
    ONE round trip in autocommit: it writes the rows and the vote's
    *token* with the rows' ids, notifies the queue and, with *settled*,
    deletes the tokens of earlier votes given (*settled*, whose outcome
    is known).  One row comes back: the ids, in the order of the messages
    (the rows are inserted in the order of VALUES, each taking the
    sequence's next value).  The parts of a statement see one snapshot
    and run to completion whether or not the last part reads them; none
    touches a row another touches (a new token is no settled one)."""
    settle = f"""
        settled AS (
            DELETE FROM {VOTES_TABLE}
            WHERE token = ANY(%(settled)s::uuid[])),""" if settled else ''
    return f"""
    WITH {settle}
    queued AS (
        INSERT INTO {TABLE} (queue, message_id, fromaddr, toaddrs, message)
        VALUES {_values(count)}
        RETURNING id),
    voted AS (
        INSERT INTO {VOTES_TABLE} (token, ids)
        SELECT %(token)s::uuid, array_agg(id ORDER BY id) FROM queued
        RETURNING ids)
    SELECT ids, pg_notify('{CHANNEL}', %(queue)s) FROM voted"""


def insert(count):
    """Part of a vote of more than `VOTE_ROWS` messages: *count* of its
    rows (one database transaction holds them all, and `VOTE_DONE`)."""
    return f"""
    INSERT INTO {TABLE} (queue, message_id, fromaddr, toaddrs, message)
    VALUES {_values(count)}
    RETURNING id"""


# The end of a vote written in several statements: its token with every
# id, the settled tokens deleted, the queue notified.
VOTE_DONE = f"""
    WITH settled AS (
        DELETE FROM {VOTES_TABLE} WHERE token = ANY(%(settled)s::uuid[]))
    INSERT INTO {VOTES_TABLE} (token, ids)
    VALUES (%(token)s::uuid, %(ids)s::bigint[])
    RETURNING pg_notify('{CHANNEL}', %(queue)s)"""

# What became of a vote whose answer was lost, asked on another connection:
# its token is inserted (without ids) and committed.  The insert waits
# while the vote's transaction, having inserted the token, is still in
# progress (the token is the primary key); it then finds the token if the
# vote committed, and inserts nothing.  Inserted, the token bars the vote
# for good: a vote still on its way (not yet at its own insert of the
# token) fails on it.  Whatever processors did with the rows since, the
# token stays: exact either way.
VOTE_FENCE = f"""
    INSERT INTO {VOTES_TABLE} (token) VALUES (%(token)s::uuid)
    ON CONFLICT (token) DO NOTHING
    RETURNING token"""
# Then, if the token was there: the ids of the vote's rows (a statement of
# its own: its snapshot is taken after the wait), or NULL for the token
# inserted by an earlier question (whose commit was cut off in turn).
VOTE_IDS = f"SELECT ids FROM {VOTES_TABLE} WHERE token = %(token)s::uuid"
# A bound on the fence's wait: a vote still in flight holds it up.
LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %(timeout)s, true)"
# Housekeeping: the tokens of votes whose store object never voted again
# (a process that ended) or could not delete them.
EXPIRE_VOTES = f"""
    DELETE FROM {VOTES_TABLE}
    WHERE voted_at < clock_timestamp() - make_interval(secs => %(age)s)"""

# -- A processor's listing and claims.

# The due rows (at most *limit*, oldest first) and, on every row (on a row
# of NULLs when none is due), when the next deferred one falls due: one
# round trip.  The clock is read once, in a CTE of its own: compared with
# clock_timestamp() itself (volatile: read again for every row), due_at
# could not bound the index scan, and each pass read every row of the
# queue; compared with the CTE's one reading, both parts read only what
# they return from the (queue, due_at, id) index.
DUE = f"""
    WITH clock AS (SELECT clock_timestamp() AS now)
    SELECT due.id, due.due, later.next
    FROM clock
    CROSS JOIN LATERAL (
        SELECT extract(epoch FROM min(due_at))::float8 AS next
        FROM {TABLE}
        WHERE queue = %(queue)s AND rejected_at IS NULL
          AND due_at > clock.now) AS later
    LEFT JOIN LATERAL (
        SELECT id, due_at, extract(epoch FROM due_at)::float8 AS due
        FROM {TABLE}
        WHERE queue = %(queue)s AND rejected_at IS NULL
          AND due_at <= clock.now
        ORDER BY due_at, id
        LIMIT %(limit)s) AS due ON true
    ORDER BY due.due_at, due.id"""
PRESENT = f"""
    SELECT id, extract(epoch FROM due_at)::float8 FROM {TABLE}
    WHERE queue = %(queue)s AND rejected_at IS NULL AND id = ANY(%(ids)s)"""

# Claims, in one statement for any number of rows (a processor's
# connection claims a few messages at once: one round trip, one
# transaction and one executor start for all of them): each row, if it is
# still due and no live processor holds it -- no lease, an expired one, or
# a holder whose lock no session holds (the lock is then this statement's
# transaction's for a moment) -- locked, skipped while another
# transaction has it; its new token (one per row, from *tokens*, in the
# order of *ids*) and lease set, the claim counted; its bookkeeping,
# envelope and message returned (a message bigger than *max_inline* is
# read by READ when it is sent; none bigger than *max_size*: its size
# says why).  Nothing is claimed unless the claimant's own holder lock is
# held (by its keeper's session): after the server restarted, a claim
# under a holder id whose session is gone would be anyone's at once.
# Each row is looked up by its primary key alone (LATERAL, one index probe
# per id): with the queue's name beside it in the locking subquery, the
# planner may walk the (queue, due_at, id) index through the whole queue
# for every id when its statistics are stale -- as they are in a queue
# just filled or drained.  The queue is checked on the row found.
CLAIM = f"""
    UPDATE {TABLE} AS m
    SET lease_token = free.token, lease_holder = %(holder)s,
        lease_expires = clock_timestamp() + make_interval(secs => %(lease)s),
        claims = m.claims + 1
    FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS wanted(id, token)
    CROSS JOIN LATERAL (
        SELECT id, wanted.token FROM {TABLE}
        WHERE id = wanted.id AND rejected_at IS NULL
          AND due_at <= clock_timestamp()
          AND (lease_token IS NULL OR lease_holder IS NULL
               OR lease_expires <= clock_timestamp()
               OR pg_try_advisory_xact_lock(lease_holder))
          AND NOT pg_try_advisory_xact_lock(%(holder)s)
        FOR UPDATE SKIP LOCKED) AS free
    WHERE m.id = free.id AND m.queue = %(queue)s
    RETURNING m.id,
              extract(epoch FROM m.queued_at)::float8,
              extract(epoch FROM m.due_at)::float8,
              m.attempts,
              extract(epoch FROM m.last_attempt)::float8,
              left(m.last_error, %(max_text)s),
              m.fromaddr, m.toaddrs, octet_length(m.message),
              CASE WHEN octet_length(m.message) <= %(max_inline)s
                   THEN m.message END"""
# The message of a claim that did not bring it along (see CLAIM), while
# the claim is still the holder's.
READ = f"""
    SELECT message FROM {TABLE}
    WHERE id = %(id)s AND lease_token = %(token)s"""

# -- What the holder of a claim does with it: nothing unless the token is
# still the row's (a processor that lost its lease changes nothing).

# Messages sent: their rows deleted, several at once (`completions`), each
# looked up by its primary key; the ids of those deleted come back.
COMPLETE = f"""
    DELETE FROM {TABLE} AS m
    USING unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS sent(id, token)
    WHERE m.id = sent.id AND m.lease_token = sent.token
    RETURNING m.id"""
DEFER = f"""
    UPDATE {TABLE}
    SET due_at = to_timestamp(%(next_attempt)s),
        attempts = %(attempts)s,
        last_attempt = to_timestamp(%(last_attempt)s),
        last_error = %(last_error)s,
        toaddrs = coalesce(%(toaddrs)s, toaddrs),
        lease_token = NULL, lease_holder = NULL, lease_expires = NULL
    WHERE id = %(id)s AND lease_token = %(token)s"""
REJECT = f"""
    UPDATE {TABLE}
    SET rejected_at = clock_timestamp(), reason = %(reason)s,
        lease_token = NULL, lease_holder = NULL, lease_expires = NULL
    WHERE id = %(id)s AND lease_token = %(token)s"""
RELEASE = f"""
    UPDATE {TABLE}
    SET lease_token = NULL, lease_holder = NULL, lease_expires = NULL
    WHERE id = %(id)s AND lease_token = %(token)s"""

# -- The lease keeper.

# The holder's session lock, held on a connection of its own.
HOLD = "SELECT pg_try_advisory_lock(%(holder)s)"
# Renew the leases still ours (and move them to a new holder id after the
# holder's connection was lost and taken afresh); the rows that come back
# are the claims still held.
RENEW = f"""
    UPDATE {TABLE}
    SET lease_expires = clock_timestamp() + make_interval(secs => %(lease)s),
        lease_holder = %(holder)s
    WHERE lease_token = ANY(%(tokens)s::uuid[])
    RETURNING lease_token::text"""

# The holders alive: the session advisory locks (one bigint key: classid
# the high 32 bits, objid the low ones, objsubid 1) granted in this
# database.
_HOLDERS = """
    SELECT (classid::bigint << 32) | objid::bigint AS holder
    FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database
                      WHERE datname = current_database())"""

# -- What housekeeping does: leases of holders that are gone (dead, or
# expired) are cleared, so that status shows their messages as waiting.
CLEAR_DEAD_LEASES = f"""
    WITH holders AS ({_HOLDERS})
    UPDATE {TABLE}
    SET lease_token = NULL, lease_holder = NULL, lease_expires = NULL
    WHERE queue = %(queue)s AND lease_token IS NOT NULL
      AND (lease_expires <= clock_timestamp()
           OR lease_holder IS NULL
           OR lease_holder NOT IN (SELECT holder FROM holders))
    RETURNING id"""

# -- What an operator sees.

_SENDING = """(lease_token IS NOT NULL AND lease_expires > clock_timestamp()
               AND lease_holder IN (SELECT holder FROM holders))"""
_DEFERRED = "(attempts > 0 OR last_attempt IS NOT NULL)"
STATUS = f"""
    WITH holders AS ({_HOLDERS})
    SELECT
      count(*) FILTER (WHERE rejected_at IS NULL AND {_SENDING}),
      count(*) FILTER (WHERE rejected_at IS NULL AND NOT {_SENDING}
                         AND NOT {_DEFERRED}),
      count(*) FILTER (WHERE rejected_at IS NULL AND NOT {_SENDING}
                         AND {_DEFERRED}),
      count(*) FILTER (WHERE rejected_at IS NOT NULL),
      count(*) FILTER (WHERE rejected_at IS NULL AND {_DEFERRED}),
      extract(epoch FROM min(due_at) FILTER (
          WHERE rejected_at IS NULL AND NOT {_SENDING}
            AND {_DEFERRED}))::float8,
      extract(epoch FROM min(queued_at) FILTER (
          WHERE rejected_at IS NULL))::float8
    FROM {TABLE} WHERE queue = %(queue)s"""
# Every message, bounded: the first bytes of text fields, the first
# recipients, the head of the message (for its Message-Id when the row has
# none).
ENTRIES = f"""
    WITH holders AS ({_HOLDERS})
    SELECT id,
      CASE WHEN rejected_at IS NOT NULL THEN 'rejected'
           WHEN {_SENDING} THEN 'sending'
           WHEN {_DEFERRED} THEN 'deferred'
           ELSE 'queued' END AS state,
      extract(epoch FROM queued_at)::float8,
      attempts,
      CASE WHEN {_DEFERRED} THEN extract(epoch FROM due_at)::float8 END,
      left(last_error, %(max_text)s),
      left(reason, %(max_text)s),
      left(fromaddr, %(max_text)s),
      toaddrs[1:%(max_recipients)s],
      cardinality(toaddrs),
      left(message_id, %(max_text)s),
      CASE WHEN message_id IS NULL THEN
          substring(message FROM 1 FOR %(max_head)s) END,
      message IS NULL
    FROM {TABLE} WHERE queue = %(queue)s
    ORDER BY CASE WHEN rejected_at IS NOT NULL THEN 3
                  WHEN {_SENDING} THEN 0
                  WHEN {_DEFERRED} THEN 2 ELSE 1 END,
             queued_at, id"""

# Requeue: each rejected message becomes a new one (a new id: its age and
# attempts start afresh), in one statement.
REQUEUE = f"""
    WITH gone AS (
        DELETE FROM {TABLE}
        WHERE queue = %(queue)s AND rejected_at IS NOT NULL
        RETURNING *, nextval(pg_get_serial_sequence('{TABLE}', 'id'))
            AS new_id),
    moved AS (
        INSERT INTO {TABLE} (id, queue, message_id, fromaddr, toaddrs,
                             message)
        SELECT new_id, queue, message_id, fromaddr, toaddrs, message
        FROM gone)
    SELECT id, new_id, pg_notify(%(channel)s, %(queue)s)
    FROM gone ORDER BY id"""
PURGE = f"""
    DELETE FROM {TABLE}
    WHERE queue = %(queue)s AND rejected_at IS NOT NULL
      AND rejected_at <= to_timestamp(%(before)s)
    RETURNING id, extract(epoch FROM rejected_at)::float8"""
