"""A delivery's vote on a PostgreSQL queue: `Votes`.

A transaction's messages are queued at its vote, atomically and with one
notification, in ONE statement sent in autocommit mode (`sql.vote`): one
round trip, committed (waiting for the server's disk, as configured) when
its answer comes.  A transaction of more than `sql.VOTE_ROWS` messages
writes them in several statements of one database transaction.

Either way the vote writes a token of its own (a new uuid, made here) into
``zope_sendmail_votes``, with the ids of its rows.  When the connection is
lost before the answer came (`CommitUnknown`), the vote may or may not have
committed, and the rows' ids are unknown: another connection then inserts
the same token, without ids, and commits it (`sql.VOTE_FENCE`).
PostgreSQL makes that insert wait while the vote's transaction, having
inserted the token, is still in progress (the token is a primary key),
then finds the token if the vote committed; if not, the token inserted
bars the vote for good, even one still on its way to the server or to its
own insert (it fails on the token).  An exact answer, even when a
processor has sent and deleted the rows meanwhile (woken by the vote's
notification, it takes milliseconds): the token stays, and its row tells
the ids, so that a transaction aborted after the vote still removes the
rows (`PostgresStore.discard`).  The server may be restarting: the question
is asked again until `RESOLVE_TIMEOUT` (a token found without ids is an
earlier question's).

A token is of no more use once its vote's outcome is known: this object
keeps those tokens and, once there are `SETTLE_AT` of them, its next vote
deletes them (at most `MAX_SETTLED`) in its own statement, so that the
table holds only the votes in flight and the last few of each store
object; `expire` (the store's housekeeping) deletes those older than an
hour: a process that ended left its last ones.  (Deleting a few at a time
rather than each at the next vote saves most votes a part of their
statement: a vote's time is mostly the server's.)
"""
import collections
import functools
import logging
import threading
import time
import uuid

from zope.interface import implementer

from zope.sendmail.interfaces import IVotes
from zope.sendmail.interfaces import QueueError
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.pool import CommitUnknown
from zope.sendmail.stores.postgresql.pool import said


log = logging.getLogger(__name__)

#: How long a vote whose answer was lost keeps asking what became of it.
RESOLVE_TIMEOUT = 30.0
#: How many settled tokens a vote waits for before it deletes them; how
#: many one vote deletes at most; how many are kept at most (more are left
#: to `Votes.expire`).
SETTLE_AT = 20
MAX_SETTLED = 100
MAX_KEPT = 1000
#: The age (seconds) of the tokens `Votes.expire` deletes.
EXPIRE_AGE = 3600.0
#: The parameters of the messages of a statement (`sql.vote`).
_NAMES = [(f'message_id{n}', f'fromaddr{n}', f'toaddrs{n}', f'message{n}')
          for n in range(sql.VOTE_ROWS)]


@implementer(IVotes)
class Votes:
    """The votes of one store object on *queue*, through *pool* (a
    `ConnectionPool`); *name* is what log lines and errors call the queue.
    See the module and `IVotes`."""

    def __init__(self, pool, queue, name):
        self.pool = pool
        self.queue = queue
        self.name = name
        self._settled = collections.deque(maxlen=MAX_KEPT)
        self._lock = threading.Lock()

    def __repr__(self):
        return f'<Votes {self.name}, {len(self._settled)} settled>'

    def _take_settled(self):
        with self._lock:
            if len(self._settled) < SETTLE_AT:
                return []
            return [self._settled.popleft()
                    for _ in range(min(MAX_SETTLED, len(self._settled)))]

    def _settle(self, tokens):
        with self._lock:
            self._settled.extend(tokens)

    def cast(self, rows):
        psycopg = self.pool.psycopg
        token = uuid.uuid4()
        settled = self._take_settled()
        params = {'queue': self.queue, 'token': token}
        if settled:
            params['settled'] = settled
        try:
            if len(rows) <= sql.VOTE_ROWS:
                for n, row in enumerate(rows):
                    self._row_params(params, n, row)
                ids = self.pool.run(self._statement(len(rows), bool(settled)),
                                    params, fetch='one', retry=False)[0]
            else:
                ids = self.pool.transaction(
                    lambda conn: self._in_parts(conn, params, rows))
        except CommitUnknown as e:
            ids = self._resolve(token, e)
            if ids is None:
                # Neither deleted, and the question's token is there: the
                # next votes delete them.
                self._settle(settled + [token])
                raise QueueError(
                    f'queue {self.name}: the vote\'s commit failed ({e});'
                    f' nothing was queued') from e
        except psycopg.Error as e:
            # The database's condition, or a refusal (a value it will not
            # take): the statement was undone, nothing is queued.
            self._settle(settled)
            raise QueueError(f'queue {self.name}: cannot queue'
                             f' {len(rows)} message(s): {said(e)}') from e
        self._settle([token])
        return list(ids)

    @staticmethod
    @functools.lru_cache(maxsize=2 * sql.VOTE_ROWS)
    def _statement(count, settled):
        return sql.vote(count, settled)

    @staticmethod
    def _row_params(params, n, row):
        params.update(zip(_NAMES[n], row))

    def _in_parts(self, conn, params, rows):
        """A big vote: `sql.VOTE_ROWS` messages a statement, then the
        token (in the transaction run by the pool)."""
        ids = []
        for start in range(0, len(rows), sql.VOTE_ROWS):
            part = rows[start:start + sql.VOTE_ROWS]
            values = {'queue': self.queue}
            for n, row in enumerate(part):
                self._row_params(values, n, row)
            ids.extend(row[0] for row in conn.execute(
                sql.insert(len(part)), values).fetchall())
        conn.execute(sql.VOTE_DONE, dict(params, ids=ids,
                                         settled=params.get('settled', [])))
        return ids

    def _resolve(self, token, error):
        """The ids of the vote of *token* if it committed, None if it did
        not; `QueueError` if the server cannot tell within
        `RESOLVE_TIMEOUT` seconds.  *error* is how its answer was lost."""
        psycopg = self.pool.psycopg
        log.warning('queue %s: the connection was lost during a vote (%s);'
                    ' asking the server whether it committed', self.name,
                    error)
        deadline = time.monotonic() + RESOLVE_TIMEOUT

        def ask(conn):
            # The wait for a vote in flight is bounded by what is left of
            # the time, the next try asks again.
            left = max(deadline - time.monotonic(), 0.1)
            conn.execute(sql.LOCK_TIMEOUT, {'timeout': f'{int(left * 1000)}'})
            if conn.execute(sql.VOTE_FENCE, {'token': token}).fetchone():
                return None  # committed with it: the vote never will
            row = conn.execute(sql.VOTE_IDS, {'token': token}).fetchone()
            if row is None:
                # Found, then gone (deleted by hand: this object settles
                # it only later, expire after an hour): the vote
                # committed, its ids unknown.
                return []
            return row[0]  # None: an earlier question's token
        while True:
            try:
                ids = self.pool.transaction(ask)
            except (psycopg.Error, CommitUnknown) as e:
                state = said(e)
            else:
                if ids is None:
                    log.info('queue %s: it did not commit', self.name)
                else:
                    log.info('queue %s: it did commit', self.name)
                return ids
            if time.monotonic() > deadline:
                log.error('queue %s: cannot tell whether a vote committed'
                          ' (token %s: %s); if it did, its messages are'
                          ' sent although the transaction fails',
                          self.name, token, state)
                raise QueueError(
                    f'queue {self.name}: the vote\'s commit failed'
                    f' ({error}), and whether it queued its messages'
                    f' cannot be told: {state}') from error
            time.sleep(0.2)

    def expire(self, age=EXPIRE_AGE):
        return self.pool.run(sql.EXPIRE_VOTES, {'age': age}, fetch='count')
