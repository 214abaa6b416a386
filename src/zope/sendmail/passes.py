"""One pass's state, shared by its connection threads, and its result.

`Pass` holds the to-do list of a pass (oldest first; a throttled message
goes back to its front), starts connection threads as the processor's
schedule allows and joins them, counts the connections open, and
remembers when each throttled message was first throttled.
`PassResult` is what the pass tells its caller.
"""
import collections
import threading
import time


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


class Pass:
    """The state of one pass, shared by its connection threads: the to-do
    list (oldest first; a throttled message goes back to its front), the
    connections open, when each throttled message was first throttled."""

    def __init__(self, processor, todo, result):
        self.processor = processor
        self.todo = collections.deque(todo)
        self.result = result
        self.lock = threading.Lock()
        self.threads = []
        self.open = 0
        self.first_throttled = {}
        self.last_progress = time.monotonic()

    def going(self):
        return not self.processor.stopping.is_set() and \
            self.result.error is None and not self.result.standby

    def take(self):
        with self.lock:
            return self.todo.popleft() if self.todo else None

    def put_back(self, path):
        with self.lock:
            self.todo.appendleft(path)

    def grow(self):
        """Start another connection thread if the schedule allows."""
        if not self.going():
            return
        with self.lock:
            backlog = len(self.todo)
        if not backlog or not self.processor.schedule.may_open(backlog):
            return
        with self.lock:
            name = threading.current_thread().name
            thread = threading.Thread(
                target=self.processor._work, args=(self,), daemon=True,
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

    def patient(self, path):
        """Whether a throttled *path* is to be tried again in this pass."""
        first = self.first_throttled.get(path)
        return first is None or time.monotonic() - first < \
            self.processor.schedule.throttle_patience

    def throttled(self, path, error):
        now = time.monotonic()
        self.result.counts['throttled'] += 1
        self.first_throttled.setdefault(path, now)
        self.put_back(path)
        if now - self.last_progress > \
                self.processor.schedule.throttle_patience:
            self.processor._stop_pass(self.result, error)
