"""How many connections to a relay, and how fast: the relay's schedule.

`RelaySchedule` is the queue processor's memory of its relay, kept across
passes, in the spirit of Postfix's queue manager: a pass starts with one
connection and opens another only while each open one has more than
``per_connection`` messages waiting, one at a time, and only while the
relay takes them.  A connection the relay turns away brings the
concurrency down to the connections open then; after ``probe_after``
seconds without another refusal it may grow by one again, and so on up to
``connections``.

The pace: with a ``max_rate`` (messages a second), every message waits
for its turn, shared by all connections.  A relay that says "too fast"
makes every connection pause, and the rate comes down to 97 % of what the
relay answered in the last second (of the messages started then, the
first time), at most once a second: the replies to messages already on
their way say nothing new.  While the relay keeps accepting, the rate creeps up
again by 0.1 % a message, and when it reaches twice what had been learned
without another throttle, and no ``max_rate`` is set, the pace is lifted.
A throttle after the pause doubles the next pause, up to ``MAX_PAUSE``
seconds.  More connections are not opened while the pace keeps the open
ones waiting, nor shortly after a throttle.

The relay's recipient cap (``max_recipients``), once a connection learnt
it from a ``452 4.5.3 Too many recipients``, is given to the connections
opened later, so that they split big messages without asking again.

A mailer with several relays (a `FailoverMailer`) gets a schedule for each
(`RelaySchedules`): one relay's limits and pace are never another's.
"""
import collections
import math
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IRelaySchedule
from zope.sendmail.interfaces import IRelaySchedules


#: The longest pause after throttles in a row, in seconds.
MAX_PAUSE = 30.0
#: The lowest rate a throttling relay brings the pace down to (msg/s).
MIN_RATE = 1 / MAX_PAUSE
#: How much the rate grows with each message accepted after a throttle.
INCREASE = 1.001
#: What the rate comes down to, relative to the rate before.
DECREASE = 0.97
#: Seconds over which relays count messages: what the relay accepted
#: in the last WINDOW seconds measures its rate, and the rate comes down
#: at most once a WINDOW.
WINDOW = 1.0


@implementer(IRelaySchedule)
class RelaySchedule:
    """The schedule of one relay; see the module and `IRelaySchedule`.

    *connections*: the most connections at once; *max_rate*: messages a
    second never exceeded (None: no limit); *per_connection*: messages
    waiting per open connection that justify opening another;
    *probe_after*: seconds without a refusal before the concurrency grows
    by one; *throttle_patience*: seconds a message may keep being
    throttled (see `IRelaySchedule`); *clock*: a monotonic clock.
    """

    def __init__(self, connections=8, max_rate=None, per_connection=10,
                 probe_after=300.0, throttle_patience=300.0,
                 clock=time.monotonic):
        if not (isinstance(connections, int) and connections >= 1):
            raise ValueError(f'connections must be a whole number >= 1,'
                             f' not {connections!r}')
        if max_rate is not None and not (
                isinstance(max_rate, (int, float))
                and math.isfinite(max_rate) and max_rate > 0):
            raise ValueError(f'max_rate must be a positive number of'
                             f' messages a second, not {max_rate!r}')
        self.limit = self.concurrency = connections
        self.max_rate = self.rate = \
            None if max_rate is None else float(max_rate)
        self.per_connection = per_connection
        self.probe_after = probe_after
        self.throttle_patience = throttle_patience
        self.clock = clock
        self._lock = threading.Lock()
        self._open = self._opening = 0
        self._lowered_at = None       # when concurrency last came down
        self._next_start = 0.0        # the pace: the next message's turn
        self._waited_at = None        # when a connection last waited
        self._throttled_at = None
        self._lowered_rate_at = None  # when a throttle last lowered it
        self._hold = self._hold_until = 0.0
        self._learned = None          # the rate a throttle taught
        self._started = collections.deque()   # the last WINDOW's messages
        self._answered = collections.deque()  # and the relay's answers
        self.max_recipients = None

    def __repr__(self):
        rate = 'unpaced' if self.rate is None else f'{self.rate:.3g}/s'
        return (f'<RelaySchedule {self.concurrency} of {self.limit}'
                f' connections, {rate}>')

    def may_open(self, backlog):
        with self._lock:
            now = self.clock()
            self._probe(now)
            if self._open + self._opening == 0:
                self._opening += 1
                return True
            if self._opening or self._open >= self.concurrency \
                    or backlog <= self.per_connection * self._open:
                return False
            if self._recent(self._throttled_at, now, 2.0) or \
                    self._recent(self._waited_at, now, 1.0):
                return False  # the relay or the pace is the bottleneck
            self._opening += 1
            return True

    @staticmethod
    def _recent(when, now, seconds):
        return when is not None and now - when < seconds

    def _probe(self, now):
        if self.concurrency < self.limit and self._lowered_at is not None \
                and now - self._lowered_at >= self.probe_after:
            self.concurrency += 1
            self._lowered_at = now

    def opened(self):
        with self._lock:
            self._opening -= 1
            self._open += 1

    def refused(self):
        with self._lock:
            self._opening -= 1
            if self._open:
                # The only connection turned away is the relay being
                # unavailable, not a limit: the processor handles that.
                self.concurrency = self._open
                self._lowered_at = self.clock()

    def failed(self):
        with self._lock:
            self._opening -= 1

    def closed(self):
        with self._lock:
            self._open -= 1

    def pause(self):
        with self._lock:
            now = self.clock()
            self._trim(now)
            if self.rate is None:
                self._started.append(now)
                return 0.0
            if now < self._next_start:
                self._waited_at = now
                return self._next_start - now
            # This one's turn; the next one's counts from this one's, or
            # from its due time when woken a little late (less than half
            # a turn), so that the pace is kept, never caught up in bursts.
            spacing = 1.0 / self.rate
            due = self._next_start
            self._next_start = (due if now - due < spacing / 2 else now) \
                + spacing
            self._started.append(now)
            return 0.0

    def sent(self):
        with self._lock:
            self._answered.append(self.clock())
            if self._learned is None:
                return
            rate = self.rate * INCREASE
            if self.max_rate is not None:
                self.rate = min(rate, self.max_rate)
            elif rate >= 2 * self._learned:
                self.rate = self._learned = None  # the relay took it
            else:
                self.rate = rate

    def capped(self, max_recipients):
        with self._lock:
            if max_recipients is not None and max_recipients >= 1 and (
                    self.max_recipients is None
                    or max_recipients < self.max_recipients):
                self.max_recipients = max_recipients

    def throttled(self):
        with self._lock:
            now = self.clock()
            self._trim(now)
            self._throttled_at = now
            if self._lowered_rate_at is None or \
                    now - self._lowered_rate_at >= WINDOW:
                # Once per window: the replies to messages sent before
                # this slowdown took effect say nothing new.
                if self.rate is not None:
                    # Paced already: the relay took what was answered in
                    # the last window, with no more on their way than
                    # before.
                    rate = DECREASE * min(self.rate, len(self._answered)
                                          or self.rate)
                else:
                    # What the relay took, at most: the messages started
                    # in the last window, but the one it just throttled
                    # (those answered are fewer: some are on their way).
                    rate = DECREASE * (len(self._started) - 1) or 1.0
                self.rate = self._learned = max(MIN_RATE, rate)
                self._lowered_rate_at = now
                self._hold = 1.0 / self.rate
            elif now >= self._hold_until:
                # Throttled again after the pause: the relay's window is
                # still full; wait twice as long.
                self._hold = min(MAX_PAUSE, 2 * self._hold)
            self._hold_until = now + self._hold
            self._next_start = max(self._next_start, self._hold_until)
            return self._hold_until - now

    def _trim(self, now):
        for times in (self._started, self._answered):
            while times and times[0] <= now - WINDOW:
                times.popleft()


@implementer(IRelaySchedules)
class RelaySchedules:
    """The schedules of the relays of a mailer with several (a
    `FailoverMailer`), one per relay, each made by *factory* (without
    arguments) when its relay is first named; see `IRelaySchedules`."""

    def __init__(self, factory):
        self.factory = factory
        self._lock = threading.Lock()
        self._schedules = {}

    def __repr__(self):
        return f'<RelaySchedules of {", ".join(self._schedules) or "none"}>'

    def get(self, relay):
        with self._lock:
            schedule = self._schedules.get(relay)
            if schedule is None:
                schedule = self._schedules[relay] = self.factory()
            return schedule

    def relays(self):
        with self._lock:
            return list(self._schedules)
