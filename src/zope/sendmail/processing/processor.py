"""One pass over a mail queue: claim, send, and dispose of each message.

`QueueProcessor.process` asks its store (an `IQueueStore`) for the oldest
messages due, oldest first, and sends them over one SMTP connection, or
more as its `RelaySchedule` allows (up to ``connections``, while the
backlog justifies them and the relay takes them), each carrying up to
``max_messages``, at the schedule's pace.  Each message is claimed first
(`IQueueStore.claim`), so processors in any number of threads, processes
and hosts can share a queue; `Disposition` then disposes of it by the
outcome.  Where a claim is a round trip to a database server (the store's
``claim_ahead``), a connection claims the next few messages of the to-do
list with its own (`IQueueStore.claim_many`): as many as it sends in
about `AHEAD_WINDOW` seconds, and no more than its share of the backlog;
what it did not send goes back to the list, its claims released.  The
processor knows nothing of how the store keeps messages.

No message is blamed for the relay's conditions: a connection turned away
lowers the concurrency (the pass goes on while one connection works); "too
fast" slows the pace and puts the message back at the front of the pass's
to-do list, to be sent after the pause and at most a few times in a pass
(then a later pass sends it; deferred as a temporary failure only once
throttled for ``throttle_patience`` seconds); an unreachable relay,
refused settings or a used-up quota stop the pass, which says so in its
result.  A reply about one recipient (greylisting, a full mailbox) is that
recipient's: it is retried with backoff, and the pass goes on.  The
relay's recipient cap, once learnt, is kept in the schedule and given to
every connection.  An *observer* (`IProcessingObserver`) is told what
became of each message and how the relay answered (metrics count it).

A mailer with several relays (an `IFailoverMailer`) gets a schedule per
relay (`RelaySchedules`): a connection is booked with the schedule of
the relay the mailer names as its next (`next_relay`), and, when the
mailer chose another (the one named was down), booked with that one's
instead; the pace, throttles and recipient cap of each message go to the
schedule of the relay the connection uses for it.
"""
import collections
import logging
import threading
import time

from zope.sendmail.events import dispatch
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.processing.disposition import RELAY_CONDITIONS
from zope.sendmail.processing.disposition import Disposition
from zope.sendmail.processing.observer import Observing
from zope.sendmail.processing.observer import mailer_relay
from zope.sendmail.processing.observer import relay_name
from zope.sendmail.processing.passes import Pass
from zope.sendmail.processing.passes import PassResult
from zope.sendmail.processing.passes import Throttles
from zope.sendmail.processing.retry import RetryPolicy
from zope.sendmail.processing.scheduling import RelaySchedule
from zope.sendmail.processing.scheduling import RelaySchedules
from zope.sendmail.smtp.single import open_connection
from zope.sendmail.stores import open_store


log = logging.getLogger(__name__)

#: A message taken from the to-do list and not claimed yet.
_UNCLAIMED = object()
#: About how many seconds of sending a connection claims ahead (for a
#: store that claims several messages at once): through a fast relay,
#: a claim per message costs more than the message; through a slow one,
#: messages claimed by a connection wait for it while others are idle
#: (at the end of a pass; and other processors cannot have them).
AHEAD_WINDOW = 0.05


class QueueProcessor:
    """Sends the messages of *store* (an `IQueueStore`, or what
    `open_store` opens: a path, a Maildir folder) through *mailer*.

    *connections* and *max_rate* bound the connections and the pace (see
    `RelaySchedule`; or pass a *schedule*, an `IRelaySchedule`, kept
    across passes; a mailer with several relays, a `FailoverMailer`, gets
    one per relay from *schedules*, an `IRelaySchedules`, by default
    made with the same settings); *max_messages* the messages per
    connection.  *retry* is a `RetryPolicy`; *notify* receives the events
    (by default the `events` dispatcher, outside this thread's
    transaction).  *may_send*,
    the store's by default, is asked before each message.  The store's
    housekeeping is done at the first pass, then every *housekeeping*
    seconds.  *observer*, an `IProcessingObserver`, is told the outcomes
    and the relay's conditions (nothing is told without one)."""

    def __init__(self, mailer, store, connections=8, max_messages=100,
                 retry=None, notify=dispatch, may_send=None, max_rate=None,
                 schedule=None, housekeeping=3600.0, observer=None,
                 schedules=None):
        if connections < 1 or max_messages < 1:
            raise ValueError('connections and max_messages must be >= 1')
        self.mailer = mailer
        self.store = open_store(store)
        self.connections = connections
        self.max_messages = max_messages
        self.schedule = schedule or RelaySchedule(connections, max_rate)
        self.schedules = schedules or RelaySchedules(
            lambda: RelaySchedule(connections, max_rate))
        self.observing = Observing(observer, self.store.name)
        self.disposition = Disposition(retry or RetryPolicy(), notify,
                                       self.store.now, self.observing,
                                       mailer_relay(mailer))
        self.may_send = may_send or self.store.may_send
        self.housekeeping = housekeeping
        self._last_housekeeping = None
        self.stopping = threading.Event()
        self.throttles = Throttles()

    # The retry policy and the event sink live in the disposition.
    retry = property(lambda self: self.disposition.retry)

    @property
    def notify(self):
        return self.disposition.notify

    @notify.setter
    def notify(self, notify):
        self.disposition.notify = notify

    def __repr__(self):
        return f'<QueueProcessor {self.store.name!r} via {self.mailer!r}>'

    def due(self, result, limit=None):
        """The entries of the (at most *limit*) oldest messages due now;
        ``result.more`` says if more were due, ``result.next_due`` when
        the next deferred one falls due."""
        due = self.store.due(limit)
        result.more, result.next_due = due.more, due.next_due
        return due.entries

    def _tidy(self):
        now = time.monotonic()
        if self._last_housekeeping is None or \
                now - self._last_housekeeping >= self.housekeeping:
            self._last_housekeeping = now
            self.store.housekeeping()

    def process(self):
        """Run one pass (after the store's housekeeping, when it is due);
        return a `PassResult`.  Never raises for a message's sake; stops
        early when `stopping` is set.  A processor that may not work on
        the queue now (another holds its lease) is a standby: it sends
        nothing, and its result says so."""
        result = PassResult()
        if not self.store.acquire():
            result.standby = True
            return result
        self._tidy()
        self.throttles.prune(self.store)
        # What the connections carry; the rest waits for the next pass.
        todo = self.due(result, self.connections * self.max_messages)
        booked = self.book(len(todo)) if todo else None
        if booked is not None:
            run = Pass(self, todo, result)
            try:
                self._work(run, booked)  # the first connection, here
            finally:
                run.join()
        return result

    # The schedules: one, or one per relay of a mailer with several.

    def _next_relay(self):
        next_relay = getattr(self.mailer, 'next_relay', None)
        return None if next_relay is None else next_relay()

    def schedule_for(self, relay):
        """The `IRelaySchedule` of *relay*: the one `schedule`, unless the
        mailer has several relays (``next_relay``) and *relay* names one.
        """
        if relay is None or getattr(self.mailer, 'next_relay', None) is None:
            return self.schedule
        return self.schedules.get(relay)

    def book(self, backlog):
        """Book a connection with the schedule of the relay the mailer
        will try first, *backlog* messages waiting; that schedule, or None
        when it says no."""
        schedule = self.schedule_for(self._next_relay())
        return schedule if schedule.may_open(backlog) else None

    def _work(self, run, booked):
        """Open a connection (*booked* with its schedule) and send messages
        from *run*'s to-do list over it, up to ``max_messages``."""
        opened = self._open(run, booked)
        if opened is None:
            return
        connection, booked = opened
        sent = 0
        held = collections.deque()  # (entry, claim): claimed ahead, in order
        pace = None  # seconds a message takes over this connection
        # Whether the store claims several messages at once (a store of
        # another kind, not ours, claims one at a time).
        ahead = getattr(self.store, 'claim_ahead', 1) > 1
        try:
            while sent < self.max_messages and run.going():
                if self.may_send is not None and not self.may_send():
                    run.result.standby = True  # the lease is lost: no more
                    break
                run.grow()
                # The message first: a connection with nothing left to
                # send takes no turn in the pace (and holds up no pass).
                if held:
                    entry, claimed = held.popleft()
                    run.hold(-1)
                else:
                    entry, claimed = run.take(), _UNCLAIMED
                    if entry is None:
                        break
                if not (self._wait_turn(connection)
                        and run.wait_throttled(entry)):
                    # Stopping: it was not tried.
                    if claimed is not _UNCLAIMED:
                        claimed.release()
                    run.put_back(entry)
                    break
                if claimed is _UNCLAIMED and ahead:
                    claimed = self._claim_ahead(
                        run, entry, self.max_messages - sent, held, pace)
                started = time.monotonic() if ahead else None
                outcome = self._attempt(run, entry, connection, claimed)
                if outcome is None:
                    break  # the connection is lost; the message waits
                if started is not None and outcome != 'busy':
                    # How long a message takes here, smoothed.
                    took = time.monotonic() - started
                    pace = took if pace is None else (pace + took) / 2
                booked = self._rebook(run, booked, connection)
                sent += outcome != 'busy'
        finally:
            # What was claimed ahead and not tried goes back, for this
            # pass's other connections or the next pass.
            while held:
                entry, claimed = held.pop()
                run.hold(-1)
                claimed.release()
                run.put_back(entry)
            connection.close()
            booked.closed()
            run.closed()
        run.grow()  # a fresh connection for what is left, if it pays

    def _pace(self, connection):
        """The schedule whose pace *connection* keeps: its relay's now."""
        if getattr(self.mailer, 'next_relay', None) is None:
            return self.schedule  # one relay (asked several times a message)
        return self.schedule_for(getattr(connection, 'relay', None))

    def _wait_turn(self, connection):
        """Wait for this connection's turn in its relay's pace; False when
        the processor is stopping."""
        delay = self._pace(connection).pause()
        while delay:
            if self.stopping.wait(delay):
                return False
            delay = self._pace(connection).pause()
        return True

    def _open(self, run, booked):
        """``(connection, schedule)``: a connection and the schedule it is
        booked with (*booked*, or its relay's when the mailer chose
        another); or None."""
        # The relay turning a connection away is the one tried first (a
        # mailer of several relays slows down rather than switch).
        relay = self._next_relay() or self.disposition.relay
        try:
            connection = open_connection(self.mailer)
        except RelayBusyError as e:
            booked.refused()
            self.observing.tell('connection_refused', relay)
            if run.opened_alone():
                self._stop_pass(run.result, e)  # not even one connection
            else:
                run.result.counts['turned away'] += 1
                log.info('queue %s: a connection more than %s takes: %s',
                         self.store.name, self.mailer, e)
            return None
        except MailDeliveryError as e:
            booked.failed()
            if run.opened_alone():
                self._stop_pass(run.result, e)
            else:
                log.warning('queue %s: another connection failed: %s',
                            self.store.name, e)
            return None
        except Exception as e:
            # A bug, not the relay nor any message: stop the pass, so that
            # the thread backs off instead of trying again at once.
            booked.failed()
            log.exception('queue %s: unexpected error connecting through'
                          ' %r', self.store.name, self.mailer)
            self._stop_pass(run.result, e)
            return None
        except BaseException:
            booked.failed()
            raise
        schedule = self._pace(connection)
        if schedule is not booked:
            # The mailer chose another relay than the one it named (that
            # one was down): the connection counts against its own.
            booked.failed()
            if not schedule.may_open(run.backlog() + 1):
                connection.close()
                return None
        schedule.opened()
        run.opened()
        if schedule.max_recipients is not None and \
                hasattr(connection, 'max_recipients'):
            connection.max_recipients = schedule.max_recipients
        return connection, schedule

    def _rebook(self, run, booked, connection):
        """The schedule *connection* is booked with after a message: moved
        from *booked* to the schedule of the relay it uses now when it
        switched (a failover connection whose relay said its quota is
        used up) and that schedule takes it, so that the connections open
        to each relay are counted where they are."""
        schedule = self._pace(connection)
        if schedule is booked or not schedule.may_open(run.backlog() + 1):
            return booked
        schedule.opened()
        booked.closed()
        return schedule

    def _claim_ahead(self, run, entry, room, held, pace):
        """The claim of *entry*, made with the claims of the next messages
        of *run*'s to-do list when the store claims several at once
        (``claim_ahead``): at most *room* in all (what this connection
        may still send), no more than `AHEAD_WINDOW` seconds of sending
        at this connection's *pace* (seconds per message; None: not known
        yet, one), and no more than its share of the backlog, so that a
        burst still spreads over the connections.  The others' claims go
        to *held*; those not made count as busy.  `_UNCLAIMED` when
        *entry* alone is to be claimed (by `_attempt`)."""
        ahead = min(self.store.claim_ahead, room)
        if ahead <= 1 or pace is None:
            return _UNCLAIMED
        ahead = min(ahead, max(1, (run.backlog() + 1) // self.connections),
                    max(1, int(AHEAD_WINDOW / max(pace, 1e-6))))
        if ahead <= 1:
            return _UNCLAIMED
        entries = [entry] + run.take_many(ahead - 1)
        try:
            claims = self.store.claim_many(entries)
        except Exception:  # a bug: the thread must live on
            log.exception('unexpected error claiming %d messages from %s',
                          len(entries), entry.location)
            claims = [None] * len(entries)
        for other, claimed in zip(entries[1:], claims[1:]):
            if claimed is None:
                run.result.counts['busy'] += 1
            else:
                held.append((other, claimed))
                run.hold(1)
        return claims[0]

    def _attempt(self, run, entry, connection, claimed=_UNCLAIMED):
        """Send the message of *entry* (claiming it first, unless
        *claimed* says how that went: its claim, or None when it could not
        be claimed); its outcome, or None when the connection was lost."""
        if claimed is _UNCLAIMED:
            try:
                claimed = self.store.claim(entry)
            except Exception:  # a bug: the thread must live on
                log.exception('unexpected error claiming %s',
                              entry.location)
                claimed = None
        if claimed is None:
            run.result.counts['busy'] += 1
            return 'busy'
        try:
            outcome = self.disposition.deliver(claimed, connection,
                                               patient=run.patient(entry))
        except ThrottledError as e:
            # Too fast: the same message again, later, slower; no attempt
            # is counted against it (unless it waited too long: patient).
            # The pace first, so that no connection sends it before that.
            run.throttled(entry, e, self._pace(connection).throttled())
            self.observing.tell('throttled', self._relay(connection))
            return 'throttled'
        except RelayBusyError as e:
            # Reconnecting (the relay had closed the connection) was
            # turned away: the message is not to blame.
            run.put_back(entry)
            self.observing.tell('connection_refused',
                                self._relay(connection))
            log.info('queue %s: %s', self.store.name, e)
            return None
        except RELAY_CONDITIONS as e:
            # Refused settings, a used-up quota: no message is to blame,
            # and the others would fail the same way.
            run.put_back(entry)
            self._stop_pass(run.result, e)
            return None
        except Exception as e:
            # Stop no other message, nor come back every pass.
            log.exception('unexpected error processing %s', entry.location)
            outcome = self.disposition.defer(claimed, claimed.name,
                                             claimed.location,
                                             f'unexpected error: {e!r}',
                                             relay=self._relay(connection))
        finally:
            claimed.release()
            # The relay that answered: a failover connection may have
            # switched to another for this message.
            schedule = self._pace(connection)
            schedule.capped(getattr(connection, 'max_recipients', None))
        self.throttles.forget(entry.key)
        run.result.counts[outcome] += 1
        run.progress()
        schedule.sent()
        return outcome

    def _relay(self, connection):
        return relay_name(connection, self.disposition.relay)

    def _stop_pass(self, result, error):
        if result.error is None:
            result.error = error
            kind = 'configuration problem' if isinstance(
                error, MailerConfigurationError) else 'quota used up' \
                if isinstance(error, QuotaExceededError) else \
                'relay throttling' if isinstance(error, ThrottledError) \
                else 'relay unavailable' if isinstance(
                    error, MailDeliveryError) else 'unexpected error'
            log.error('queue %s: %s, pass stopped: %s', self.store.name,
                      kind, error)
