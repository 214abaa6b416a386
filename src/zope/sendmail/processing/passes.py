"""One pass's state, shared by its connection threads, and its result.

`Pass` holds the to-do list of a pass (the store's entries, oldest first;
a throttled message goes back to its front, up to `MAX_THROTTLES` times,
then waits for a later pass), starts connection threads as the processor's
schedule allows and joins them, and counts the connections open.
`Throttles`, kept by the processor across passes, remembers when each
throttled message was first throttled and when it may be sent again.
`PassResult` is what the pass tells its caller.
"""
import collections
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IThrottledMessages


#: How many times one pass sends a message the relay throttles; then the
#: message waits for a later pass, and the others go first.
MAX_THROTTLES = 3


class PassResult:
    """What one pass did: counts of outcomes, the earliest time a deferred
    message falls due (``next_due``), whether more messages were due than
    the pass took (``more``), and ``error``: the exception that
    stopped the pass (relay unreachable, bad settings), or None;
    ``standby``: the pass stopped (or never began) as the queue's lease
    is another processor's."""

    def __init__(self):
        self.counts = collections.Counter()
        self.next_due = None
        self.error = None
        self.more = False
        self.standby = False

    def __repr__(self):
        counts = ', '.join(f'{k} {v}' for k, v in sorted(self.counts.items()))
        return f'<PassResult {counts or "nothing due"}' + (
            f'; stopped: {self.error}>' if self.error else '>')


@implementer(IThrottledMessages)
class Throttles:
    """The messages the relay throttled, by their entries' keys, kept by
    the processor across passes; see `IThrottledMessages`.  *clock* is
    monotonic."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._messages = {}  # key -> [first throttled, not before]

    def __len__(self):
        return len(self._messages)

    def throttled(self, key, wait):
        """*key* was throttled now: not to be sent for *wait* seconds."""
        now = self.clock()
        with self._lock:
            self._messages.setdefault(key, [now, None])[1] = now + wait

    def since(self, key):
        """When *key* was first throttled, or None."""
        with self._lock:
            return self._messages.get(key, (None,))[0]

    def wait(self, key):
        """Seconds before *key* may be sent again (0: now)."""
        with self._lock:
            entry = self._messages.get(key)
        return 0.0 if entry is None else max(0.0, entry[1] - self.clock())

    def forget(self, key):
        with self._lock:
            self._messages.pop(key, None)

    def prune(self, store):
        """Forget messages gone from the queue of *store* (sent by another
        processor, removed by an operator)."""
        with self._lock:
            keys = list(self._messages)
        if not keys:
            return  # the common case: no question for the store
        present = store.present(keys)
        for key in keys:
            if key not in present:
                self.forget(key)


class Pass:
    """The state of one pass, shared by its connection threads: the to-do
    list (oldest first; a throttled message goes back to its front a few
    times), the messages its connections claimed ahead and have not tried
    yet, the connections open, how often each message was throttled."""

    def __init__(self, processor, todo, result):
        self.processor = processor
        self.todo = collections.deque(todo)
        self.ahead = 0  # claimed ahead by a connection, not tried yet
        self.result = result
        self.lock = threading.Lock()
        self.threads = []
        self.open = 0
        self.throttles = collections.Counter()  # in this pass
        self.last_progress = time.monotonic()

    def going(self):
        return not self.processor.stopping.is_set() and \
            self.result.error is None and not self.result.standby

    def take(self):
        with self.lock:
            return self.todo.popleft() if self.todo else None

    def take_many(self, n):
        """Up to *n* entries from the front of the to-do list."""
        with self.lock:
            return [self.todo.popleft() for _ in range(min(n, len(
                self.todo)))]

    def backlog(self):
        """How many messages wait: in the to-do list, and claimed ahead by
        a connection but not tried yet (what justifies a connection)."""
        with self.lock:
            return len(self.todo) + self.ahead

    def hold(self, count):
        """*count* more messages are claimed ahead (fewer: negative)."""
        with self.lock:
            self.ahead += count

    def put_back(self, entry):
        with self.lock:
            self.todo.appendleft(entry)

    def grow(self):
        """Start another connection thread if the schedule allows."""
        if not self.going():
            return
        backlog = self.backlog()
        booked = self.processor.book(backlog) if backlog else None
        if booked is None:
            return
        with self.lock:
            name = threading.current_thread().name
            thread = threading.Thread(
                target=self.processor._work, args=(self, booked),
                daemon=True,
                name=f'{name} connection {len(self.threads) + 1}')
            self.threads.append(thread)
        thread.start()

    def join(self):
        while True:
            with self.lock:
                if not self.threads:
                    return
                thread = self.threads.pop()
            thread.join()

    def opened(self):
        with self.lock:
            self.open += 1

    def opened_alone(self):
        """A connection could not be opened: whether no other is open."""
        with self.lock:
            return self.open == 0

    def closed(self):
        with self.lock:
            self.open -= 1

    def progress(self):
        self.last_progress = time.monotonic()

    def wait_throttled(self, entry):
        """Wait until *entry*, if throttled, may be sent again (a
        connection may have passed its turn in the pace before the
        throttle); False when the processor is stopping."""
        delay = self.processor.throttles.wait(entry.key)
        return not (delay and self.processor.stopping.wait(delay))

    def patient(self, entry):
        """Whether a throttled *entry* is still to be sent again, rather
        than deferred as a temporary failure: throttled for less than
        ``throttle_patience`` seconds, over any number of passes."""
        first = self.processor.throttles.since(entry.key)
        return first is None or time.monotonic() - first < \
            self.processor.schedule.throttle_patience

    def throttled(self, entry, error, wait):
        """The relay throttled *entry*, and the schedule pauses *wait*
        seconds: back to the front of the list, unless it was throttled
        `MAX_THROTTLES` times in this pass (then a later pass sends it);
        the pass stops when nothing went for ``throttle_patience``."""
        now = time.monotonic()
        self.result.counts['throttled'] += 1
        # A schedule that names no pause gets one second.
        self.processor.throttles.throttled(entry.key, wait or 1.0)
        with self.lock:
            self.throttles[entry.key] += 1
            again = self.throttles[entry.key] < MAX_THROTTLES
        if again:
            self.put_back(entry)
        else:
            self.result.more = True  # not all that was due was done
        if now - self.last_progress > \
                self.processor.schedule.throttle_patience:
            self.processor._stop_pass(self.result, error)
