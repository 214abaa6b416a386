"""What ties a processor's claims to its life: `LeaseKeeper`.

A processor's store object picks a random 63-bit holder id and holds a
session-level advisory lock on it, on a connection of its own, for as long
as it lives.  Its claims carry the id (``lease_holder``) and a lease that
expires; another processor may take a claim over at once when no session
holds the holder's lock (the processor died, or its connection did: the
server ends the session), and otherwise only once the lease has expired
(the holder is alive but paused, or cut off from the database).  The
keeper's thread renews the leases of the claims held every ``renew``
seconds, and checks the holder's connection as it does; while it cannot
(the database is unreachable, the holder's session is gone)
`LeaseKeeper.may_send` is False, so that the processor starts no message
it may no longer hold.  A holder connection that was lost is replaced by a
new one with a new id; the leases still ours move to it.
"""
import logging
import secrets
import select
import threading

from zope.interface import implementer

from zope.sendmail.interfaces import ILeaseKeeper
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.pool import said


log = logging.getLogger(__name__)


@implementer(ILeaseKeeper)
class LeaseKeeper:
    """The holder id, its lock and the renewing thread of one store
    object's processor (*pool*: the store's `ConnectionPool`; *lease*,
    *renew*: seconds; *name*: the queue, for log lines)."""

    def __init__(self, pool, lease, renew, name):
        self.pool = pool
        self.lease = lease
        self.renew = renew
        self.name = name
        self.holder = None
        self._conn = None
        self._tokens = set()  # the leases of the claims held
        self._lock = threading.Lock()  # guards _tokens
        self._hold_lock = threading.Lock()  # one taker of the holder lock
        self._stopping = threading.Event()
        self._poked = threading.Event()  # set: renew now (or stop)
        self._thread = None
        self._ok = False
        self._complained = False

    def __repr__(self):
        return f'<LeaseKeeper {self.name} holder {self.holder}>'

    # The holder's lock.

    def _hold(self):
        """Take a new holder id and its lock on a new connection; return
        the id, or None (logged) when the database cannot be reached."""
        psycopg = self.pool.psycopg
        with self._hold_lock:
            if self._conn is not None and self.holder is not None:
                return self.holder
            try:
                conn = self.pool.connect(statement_timeout=False)
            except psycopg.Error as e:
                self._unreachable(e)
                return None
            try:
                while True:
                    holder = secrets.randbits(63)
                    # Another holder with this id (one in 2**63): draw again.
                    if conn.execute(sql.HOLD, {'holder': holder}
                                    ).fetchone()[0]:
                        break
            except psycopg.Error as e:
                conn.close()
                self._unreachable(e)
                return None
            self._conn, self.holder = conn, holder
            self._ok = True
            if self._complained:
                log.info('queue %s: the database is reachable again',
                         self.name)
                self._complained = False
            return holder

    def failed(self, error):
        """The database did not answer a claim (*error*): no message is
        started until the keeper renews again, which it tries within a
        second."""
        self._unreachable(error)
        self._poked.set()

    def _unreachable(self, error):
        self._ok = False
        # The database's condition, not a bug: once per outage, no trace.
        if not self._complained:
            log.warning('queue %s: cannot hold or renew claims (%s); no'
                        ' message is started until the database answers',
                        self.name, said(error))
            self._complained = True

    def _drop_holder(self):
        conn, self._conn = self._conn, None
        self.holder = None
        if conn is not None:
            conn.close()  # the session ends, and with it the lock

    # What the store asks.

    def start(self):
        """Take the holder's lock (when the database answers) and start
        the renewing thread; harmless when it runs.  Return the holder id,
        or None."""
        holder = self._hold()
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._poked.clear()
            self._thread = threading.Thread(
                target=self._run, daemon=True,
                name=f'zope.sendmail lease keeper {self.name}')
            self._thread.start()
        return holder

    def current(self):
        """The holder id claims are made under now, or None when there is
        none (the database is unreachable).  A holder whose connection the
        server has closed (it restarted) is replaced first: a claim under
        it would be nobody's."""
        conn = self._conn
        if conn is not None and _readable(conn):
            self._check()
        return self.holder if self._conn is not None else self._hold()

    def may_send(self):
        return self._ok and self.holder is not None

    def add(self, token):
        with self._lock:
            self._tokens.add(token)

    def discard(self, token):
        with self._lock:
            self._tokens.discard(token)

    def stop(self, timeout=None):
        """Stop the thread (waiting at most *timeout* seconds) and give up
        the holder's lock: the claims left are free at once."""
        self._stopping.set()
        self._poked.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning('queue %s: the lease keeper did not stop within'
                            ' %s s', self.name, timeout)
                return
        self._thread = None
        with self._hold_lock:
            self._drop_holder()
        self._ok = False
        with self._lock:
            self._tokens.clear()

    # The thread.

    def _run(self):
        while True:
            # While it cannot renew, it tries again every second: a
            # database back after a restart is used again at once.
            self._poked.wait(self.renew if self._ok else
                             min(self.renew, 1.0))
            self._poked.clear()
            if self._stopping.is_set():
                return
            try:
                self.tick()
            except Exception:
                # A bug: the keeper must live on, but not send meanwhile.
                self._ok = False
                log.exception('queue %s: unexpected error renewing leases',
                              self.name)

    def _check(self):
        """Ask the holder's connection whether it lives; drop the holder
        if it does not (said), and have the thread take a new one."""
        psycopg = self.pool.psycopg
        with self._hold_lock:
            conn = self._conn
            if conn is not None:
                try:
                    conn.execute('SELECT 1')
                except psycopg.Error as e:
                    log.warning('queue %s: the connection holding the'
                                ' claims was lost (%s); others may take them'
                                ' over now', self.name, said(e))
                    self._drop_holder()
                    self._poked.set()

    def tick(self):
        """Check the holder's connection and renew the leases held."""
        psycopg = self.pool.psycopg
        self._check()
        self._poked.clear()  # the check is this tick's
        holder = self.current()
        if holder is None:
            return
        with self._lock:
            tokens = list(self._tokens)
        try:
            if tokens:
                # A renewal lost in a crash of the server is no loss: the
                # server's sessions, and so every claim, end with it.
                renewed = {row[0] for row in self.pool.run(sql.RENEW, {
                    'lease': self.lease, 'holder': holder,
                    'tokens': tokens}, durable=False)}
                lost = {str(t) for t in tokens} - renewed
                if lost:
                    log.warning('queue %s: %d claim(s) were lost (their'
                                ' leases expired and were taken over)',
                                self.name, len(lost))
                    with self._lock:
                        self._tokens -= {t for t in self._tokens
                                         if str(t) in lost}
        except psycopg.Error as e:
            self._unreachable(e)
            return
        self._ok = True
        if self._complained:
            log.info('queue %s: leases are renewed again', self.name)
            self._complained = False


def _readable(conn):
    """Whether the server has said something on the holder's connection
    *conn*, which it never does unasked but as it ends the session (it is
    shutting down, or the session was terminated): a look, no round
    trip."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except Exception:
        # Closed, or no socket any more: the check that follows says so.
        return True
