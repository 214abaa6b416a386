"""The connections of one store object: `ConnectionPool`.

Deliveries vote from many threads at once, and a processor's connection
threads claim and dispose of messages in parallel: each takes a connection
for one database transaction (`ConnectionPool.transaction`) and gives it
back.  At most ``size`` idle connections are kept; more are opened when
more threads need one at once, and closed when given back.  Connections
are in autocommit mode, each transaction explicit (psycopg's
``Connection.transaction``).  A connection that failed (the server
restarted, the network dropped) is closed, never given out again; a
transaction that failed on a connection taken from the idle ones, before
its commit was sent, is run once more on a new connection: the server
restarting between two transactions costs no error.  (An idle connection
with something to read -- the server's goodbye, or the end of its socket --
is dropped before it is used: a vote, sent once, is better not sent on a
dead connection, whose answer would then be unknown.)  Every connection is
opened with a connect timeout, TCP keepalives (a dead server or a cut
network is seen within seconds while the connection waits for an answer),
a TCP user timeout (the same when what it sent is never acknowledged:
a statement sent into a cut network) and a statement timeout (no
statement waits for ever); the URL's own settings win.
"""
import logging
import select
import threading

from zope.interface import implementer

from zope.sendmail.interfaces import IConnectionPool
from zope.sendmail.interfaces import QueueError


log = logging.getLogger(__name__)


def import_psycopg():
    """psycopg, or `QueueError` naming the extra that brings it."""
    try:
        import psycopg
    except ImportError:
        raise QueueError(
            "a PostgreSQL queue needs psycopg: pip install"
            " 'zope.sendmail[postgresql]'") from None
    return psycopg


def said(error):
    """What *error* (psycopg's) says, on one line: libpq's messages span
    several lines, with hints."""
    return ' '.join(str(error).split()) or type(error).__name__


class CommitUnknown(Exception):
    """The connection was lost while its COMMIT (or a statement run once,
    committing as it ends) was on its way: the transaction may or may not
    have committed (see `ConnectionPool`)."""


#: Milliseconds what a connection sent may go unacknowledged.
TCP_USER_TIMEOUT = 15000


def connect_kwargs(conninfo, connect_timeout, keepalives=True):
    """What `psycopg.connect` is given besides *conninfo*: our defaults for
    what the URL does not set."""
    import psycopg.conninfo
    given = psycopg.conninfo.conninfo_to_dict(conninfo)
    defaults = {'connect_timeout': max(1, round(connect_timeout)),
                'application_name': 'zope.sendmail'}
    if keepalives:
        # Keepalives end a connection whose peer is gone while nothing is
        # unacknowledged (5 + 3 * 2 s); the user timeout ends one whose
        # data is never acknowledged (without it: TCP's retransmissions,
        # about 15 minutes), a little later than the keepalives would.
        defaults.update(keepalives=1, keepalives_idle=5,
                        keepalives_interval=2, keepalives_count=3,
                        tcp_user_timeout=TCP_USER_TIMEOUT)
    return {k: v for k, v in defaults.items() if k not in given}


def _has_input(conn):
    """Whether something waits to be read on the socket of *conn*, an idle
    connection (or it is closed): a poll that does not wait."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:
        # No socket to poll (psycopg's error for a connection gone, or
        # the OS's): as good as dead, and closed by the caller.
        return True


class _Pooled:
    """A connection and what its session is set to."""

    __slots__ = ('conn', 'durable')

    def __init__(self, conn):
        self.conn = conn
        self.durable = True  # the server's synchronous_commit


@implementer(IConnectionPool)
class ConnectionPool:
    """Connections to *conninfo* (a URL psycopg takes); see the module.
    *name* is what log lines call the database (no password).

    Claims and lease renewals are committed without waiting for the
    server's disk (*durable* False: ``synchronous_commit`` off for the
    session): every claim ends with the server's sessions anyway.  A
    delivery's vote, an operator's changes and (unless the store says
    otherwise) what became of a message are committed as the server is
    configured to.
    """

    def __init__(self, conninfo, name, size=4, connect_timeout=10.0,
                 statement_timeout=60.0):
        self.psycopg = import_psycopg()
        self.conninfo = conninfo
        self.name = name
        self.size = size
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._kwargs = connect_kwargs(conninfo, connect_timeout)
        # Idle connections by their session's kind (durable or not), so
        # that claims and votes through one store do not switch one
        # connection's setting back and forth.
        self._idle = {True: [], False: []}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self):
        idle = sum(map(len, self._idle.values()))
        return f'<ConnectionPool {self.name}, {idle} idle>'

    def connect(self, autocommit=True, statement_timeout=True):
        """A new connection, outside the pool (the holder's, the
        listener's use one of their own)."""
        conn = self.psycopg.connect(self.conninfo, autocommit=autocommit,
                                    **self._kwargs)
        if statement_timeout and self.statement_timeout:
            try:
                conn.execute('SELECT set_config(%s, %s, false)',
                             ('statement_timeout',
                              f'{int(self.statement_timeout * 1000)}ms'))
            except BaseException:
                conn.close()
                raise
        return conn

    def _take(self, durable):
        """An idle connection (or a new one) whose session commits as
        *durable* says; and whether it was idle."""
        psycopg = self.psycopg
        while True:
            with self._lock:
                pooled = None
                # One of the kind asked for (a new one rather than one of
                # the other kind: switching back and forth would cost a
                # round trip each time).
                for kind in ((durable,) if durable is not None
                             else (True, False)):
                    if self._idle[kind]:
                        pooled = self._idle[kind].pop()
                        break
            reused = pooled is not None
            if pooled is None:
                pooled = _Pooled(self.connect())
            elif pooled.conn.closed:
                continue
            elif _has_input(pooled.conn):
                # An idle session has nothing to say but its end: the
                # server's goodbye (a shutdown, a restart, a terminated
                # backend) or the socket's end.  Better found now than
                # after a statement was sent on it, whose outcome would
                # then be unknown.
                pooled.conn.close()
                continue
            if durable is not None and pooled.durable != durable:
                try:
                    pooled.conn.execute(
                        'SET synchronous_commit TO DEFAULT' if durable else
                        'SET synchronous_commit TO off')
                except psycopg.OperationalError:
                    pooled.conn.close()
                    if reused:
                        continue  # it died while idle: the next one
                    raise
                except BaseException:
                    pooled.conn.close()
                    raise
                pooled.durable = durable
            return pooled, reused

    def _give_back(self, pooled):
        conn = pooled.conn
        if conn.closed or conn.broken:
            conn.close()
            return
        with self._lock:
            idle = self._idle[pooled.durable]
            if not self._closed and len(idle) < self.size:
                idle.append(pooled)
                return
        conn.close()

    def _attempts(self, durable, retry):
        """The connections to try a transaction on: a second (new) one when
        the first, taken from the idle ones, turns out dead."""
        pooled, reused = self._take(durable)
        yield pooled
        if retry and reused:
            # It died while idle: the server restarted (or the network
            # dropped), and the other idle ones died with it.  Trying one
            # of them would fail the same way.
            self.close()
            yield self._take(durable)[0]

    def transaction(self, work, durable=True, retry=True):
        """Run ``work(conn)`` in one database transaction on a connection
        of the pool; return what it returns.  psycopg's errors are raised
        as they come, except that a connection lost during the COMMIT
        raises `CommitUnknown`.  *durable* None: either kind of session
        will do (a transaction that only reads)."""
        psycopg = self.psycopg
        last = None
        for pooled in self._attempts(durable, retry):
            committing = False
            conn = pooled.conn
            try:
                with conn.transaction():
                    result = work(conn)
                    committing = True
            except psycopg.OperationalError as e:
                conn.close()
                if committing:
                    raise CommitUnknown(said(e)) from e
                # Perhaps a connection that sat idle while the server
                # restarted: the transaction never reached the server's
                # commit, and runs again on a new connection.
                log.debug('%s: a connection was lost (%s)', self.name,
                          said(e))
                last = e
                continue
            except BaseException:
                self._give_back(pooled)
                raise
            self._give_back(pooled)
            return result
        raise last

    def run(self, statement, params=None, fetch='all', durable=True,
            binary=False, retry=True):
        """Run one *statement* as a transaction of its own (one round
        trip); return its rows (*fetch* ``'all'``), first row
        (``'one'``) or row count (``'count'``).  A statement that failed on
        a connection taken from the idle ones is run again on a new one
        (*retry*): a statement that changes rows must be harmless to run
        twice (ours change only rows still holding a token).  Without
        *retry*, the statement is sent once, and a connection lost before
        its answer came raises `CommitUnknown`: it may have committed (a
        vote: the caller finds out)."""
        psycopg = self.psycopg
        last = None
        for pooled in self._attempts(durable, retry):
            try:
                cursor = pooled.conn.execute(statement, params,
                                             binary=binary)
                if fetch == 'all':
                    result = cursor.fetchall()
                elif fetch == 'one':
                    result = cursor.fetchone()
                else:
                    result = cursor.rowcount
            except psycopg.OperationalError as e:
                if not retry and (pooled.conn.broken or pooled.conn.closed):
                    # An error the server answered with (a timeout, a lock
                    # not available) left the connection usable, and the
                    # statement undone; a lost connection says nothing.
                    pooled.conn.close()
                    raise CommitUnknown(said(e)) from e
                pooled.conn.close()
                log.debug('%s: a connection was lost (%s)', self.name,
                          said(e))
                last = e
                continue
            except BaseException:
                self._give_back(pooled)
                raise
            self._give_back(pooled)
            return result
        raise last

    def close(self):
        """Close the idle connections; the pool may be used again."""
        with self._lock:
            idle, self._idle = self._idle, {True: [], False: []}
        for pooled in idle[True] + idle[False]:
            pooled.conn.close()
