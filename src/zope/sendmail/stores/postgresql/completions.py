"""Messages sent, recorded in groups by a thread of the store:
`Completions`.

A message the relay took is deleted from the queue -- where its claim is
still the holder's -- by this object's thread, with the others sent at
about the same time: it waits `LINGER` seconds for them, then deletes the
group in one statement and one commit (waiting for the server's disk
unless the store's outcomes are not durable).  One statement for a few
messages rather than one each: on a busy server a statement's round trip
and commit cost several times what deleting a row does, and they are
what a drain to a fast relay pays per message (see `benchmarks/`).

A processor's connection does not wait for its message's group: it goes
on with its next message, and waits, if need be, before it records that
next one as sent.  So at any time a connection has at most one message
sent and not yet recorded besides the one it is sending: those are the
messages in flight, the only ones a crash of the database server or of
the processor may send again.  Each stays claimed (its lease renewed)
until its group is committed.  What the store answers about the queue
(due messages, status, listings) comes after every completion handed to
it has been committed (`flush`); other store objects see a completion a
few milliseconds later.
"""
import logging
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import ICompletions
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.pool import said


log = logging.getLogger(__name__)

#: Seconds the thread waits for more completions before it deletes a
#: group (the first of a group waits this long; the connection that sent
#: it does not).
LINGER = 0.002
#: The most messages one statement deletes.
MAX_GROUP = 500


class _Completion:
    """A claimed message to record as sent, and whether that is done."""

    __slots__ = ('claimed', 'done')

    def __init__(self, claimed):
        self.claimed = claimed
        self.done = threading.Event()


@implementer(ICompletions)
class Completions:
    """Records the messages sent through the claims of a store, in groups,
    through *pool* (an `IConnectionPool`); *durable*: the commits wait for
    the server's disk.  *discard* is called with each claim's token once
    it is recorded (or cannot be): its lease is no longer renewed.  *name*
    is what log lines call the queue."""

    def __init__(self, pool, discard, durable=True, name=None,
                 linger=LINGER):
        self.pool = pool
        self.discard = discard
        self.durable = durable
        self.name = name or pool.name
        self.linger = linger
        self._changed = threading.Condition(threading.Lock())
        self._waiting = []
        self._busy = False  # a group is being deleted
        self._stopping = False
        self._thread = None
        self._last = threading.local()  # each thread's last completion

    def __repr__(self):
        return f'<Completions of {self.name}>'

    def complete(self, claimed):
        previous = getattr(self._last, 'completion', None)
        if previous is not None:
            # At most one of this thread's messages waits to be recorded
            # besides the one it is sending.  Bounded: the group's
            # statement has the pool's statement timeout.
            previous.done.wait()
        completion = _Completion(claimed)
        with self._changed:
            if self._stopping:
                stopped = True
            else:
                stopped = False
                self._waiting.append(completion)
                self._start()
                self._changed.notify_all()
        if stopped:
            # Closed (a processor stopping): recorded here and now.
            self._delete([completion])
            completion.done.set()
        self._last.completion = completion

    def flush(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._waiting or self._busy:
                left = None if deadline is None else \
                    deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout=None):
        flushed = self.flush(timeout)
        with self._changed:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout)
        return flushed

    def _start(self):
        # Under the lock.
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, daemon=True,
                name=f'zope.sendmail completions of {self.name}')
            self._thread.start()

    def _run(self):
        while True:
            with self._changed:
                while not self._waiting and not self._stopping:
                    self._changed.wait()
                if not self._waiting:
                    return  # stopping, everything recorded
            # The others sent meanwhile join the group.
            time.sleep(self.linger)
            with self._changed:
                group = self._waiting[:MAX_GROUP]
                del self._waiting[:MAX_GROUP]
                self._busy = True
            try:
                self._delete(group)
            finally:
                with self._changed:
                    self._busy = False
                    for completion in group:
                        completion.done.set()
                    self._changed.notify_all()

    def _delete(self, group):
        """Delete the rows of *group* where their claims still hold; say
        what became of each claim that did not."""
        claims = [completion.claimed for completion in group]
        try:
            rows = self.pool.run(sql.COMPLETE, {
                'ids': [c.row_id for c in claims],
                'tokens': [c.token for c in claims]}, durable=self.durable)
        except Exception as e:
            # The database's condition (or a bug): the messages stay as
            # they are, and are sent again once their leases run out --
            # said for each, as a possible duplicate.
            for claimed in claims:
                log.error('%s: cannot record that it was sent (%s): it will'
                          ' be tried again once its lease expires (a'
                          ' possible duplicate)', claimed.location, said(e))
            return
        finally:
            for claimed in claims:
                self.discard(claimed.token)  # no longer renewed
        deleted = {row[0] for row in rows}
        for claimed in claims:
            if claimed.row_id not in deleted:
                log.warning('%s: the claim was lost before it was sent (its'
                            ' lease expired and another processor took it,'
                            ' or an operator removed it): nothing changed,'
                            ' and it may be sent twice', claimed.location)
