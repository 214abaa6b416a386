"""Wake-ups from other processes and hosts: `Listener` and `Waiter`.

A delivery's vote notifies the channel `sql.CHANNEL` with its queue's name
as it commits.  A processor's store object listens on one connection of its
own, in a thread, and wakes its waiters when its queue is named; deliveries
of this process also ring the queue's doorbell (`stores.doorbell`) at
once.  A notification is a hint: the processor polls at its interval all
the same, so that a notification lost while the listener was reconnecting
(the server restarted) delays mail by one interval at most -- and the
listener wakes its waiters when it is listening again, in case.  It
reconnects with a growing pause (up to ``max_backoff``) while the server is
away, saying so once.
"""
import logging
import threading

from zope.interface import implementer

from zope.sendmail.interfaces import IQueueListener
from zope.sendmail.interfaces import IQueueWaiter
from zope.sendmail.stores import doorbell
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.pool import said


log = logging.getLogger(__name__)


@implementer(IQueueWaiter)
class Waiter(doorbell.Waiter):
    """A processor's waiter: rung by this process's deliveries (the
    doorbell) and by the store's `Listener`; deaf once closed."""

    closed = False

    def wake(self):
        if not self.closed:
            super().wake()

    def close(self):
        self.closed = True
        super().close()


@implementer(IQueueListener)
class Listener:
    """LISTENs for the notifications of queue *queue* on a connection made
    by *connect* (a callable), in a thread, and calls *notify* (no
    arguments) for each; see the module.  *name* is the queue for log
    lines."""

    #: How long a wait for notifications lasts before the thread looks
    #: whether it must stop: the bound of `stop`'s wait.
    poll = 0.5

    def __init__(self, connect, queue, notify, name, max_backoff=5.0):
        self.connect = connect
        self.queue = queue
        self.notify = notify
        self.name = name
        self.max_backoff = max_backoff
        self.listening = threading.Event()
        self._stopping = threading.Event()
        self._thread = None
        self._conn = None
        self._listened = False

    def __repr__(self):
        state = 'listening' if self.listening.is_set() else 'not listening'
        return f'<Listener {state} {self.name}>'

    def start(self, timeout=None):
        """Start the thread; wait at most *timeout* seconds until it
        listens (a database that cannot be reached is no error: polling
        goes on); return whether it listens."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, daemon=True,
                name=f'zope.sendmail listener {self.name}')
            self._thread.start()
        return self.listening.wait(timeout)

    def stop(self, timeout=None):
        """Stop listening; wait at most *timeout* seconds for the thread;
        return whether it stopped."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning('queue %s: the listener did not stop within'
                            ' %s s', self.name, timeout)
                return False
        self._thread = None
        return True

    def _run(self):
        self._backoff = 0.1
        self._complained = False
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as e:
                self.listening.clear()
                psycopg = _psycopg()
                if psycopg is None or not isinstance(e, psycopg.Error):
                    # A bug: logged, and the listener tries again.
                    log.exception('queue %s: unexpected error listening',
                                  self.name)
                elif not self._complained:
                    # The database's condition: said once per outage.
                    log.warning('queue %s: not listening for new mail (%s);'
                                ' polling until the database answers',
                                self.name, said(e))
                    self._complained = True
                else:
                    log.debug('queue %s: still not listening: %s',
                              self.name, said(e))
            finally:
                self._close()
            if self._stopping.wait(self._backoff):
                break
            self._backoff = min(self._backoff * 2, self.max_backoff)
        self.listening.clear()

    def _listen(self):
        conn = self._conn = self.connect()
        conn.execute(f'LISTEN {sql.CHANNEL}')
        again, self._listened = self._listened, True
        self.listening.set()
        self._backoff = 0.1
        if self._complained:
            log.info('queue %s: listening for new mail again', self.name)
            self._complained = False
        if again:
            # What was committed while nobody listened is sent now.
            self.notify()
        while not self._stopping.is_set():
            for note in conn.notifies(timeout=self.poll):
                if note.payload == self.queue:
                    self.notify()

    def _close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                # Closing a connection whose server is gone: nothing is left
                # to release, and the listener goes on.
                log.debug('closing the listener connection failed',
                          exc_info=True)


def _psycopg():
    try:
        import psycopg
    except ImportError:
        return None
    return psycopg
