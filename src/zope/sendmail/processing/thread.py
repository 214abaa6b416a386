"""The thread that keeps a mail queue moving.

`QueueProcessorThread` repeats `QueueProcessor.process` (one pass over the
queue) every ``interval`` seconds, sooner when a deferred message falls due,
at once when its store's waiter is woken (a `QueuedMailDelivery` of this
process committed to the queue), and less often, with exponential backoff,
while the relay is unreachable or refuses the mailer's settings.
``stop()`` wakes it, lets the messages in flight finish and joins it.
"""
import logging
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IMailQueueProcessor
from zope.sendmail.processing import registry
from zope.sendmail.processing.processor import QueueProcessor
from zope.sendmail.processing.retry import RetryPolicy
from zope.sendmail.stores import check_options
from zope.sendmail.stores import open_store


log = logging.getLogger(__name__)


@implementer(IMailQueueProcessor)
class QueueProcessorThread(threading.Thread):
    """Processes the queue *queuePath* (a Maildir directory, or a
    PostgreSQL URL: anything `zope.sendmail.stores.open_store` takes), or
    the Maildir folder *maildir*, through *mailer*, in a daemon thread.

    *retry*, *connections*, *max_messages* and *max_rate* configure the
    passes (see `QueueProcessor`); the processor keeps what it learns of
    the relay's limits (its `RelaySchedule`) from pass to pass.
    *housekeeping* is how often, in seconds, the store is tidied.  *lease*
    (``'auto'``, ``'on'`` or ``'off'``) says whether this processor sends
    only while it holds the queue's processor lease (``'auto'``: on a
    network file system), with *lease_timeout*, *lease_renew* and
    *lease_margin*; a standby waits.  *shared_group* accepts a queue its
    group may write to.  These are the store's settings: the store
    (`store`, opened by `zope.sendmail.stores.open_store`) decides.
    *notify* receives the events (by default the `events` dispatcher);
    *observer* (an `IProcessingObserver`) is told what becomes of each
    message (metrics: `zope.sendmail.monitoring.metrics`).

    The thread is the one way a processor is built from its settings:
    the ZCML directive's (through `zope.sendmail.startup`) and the
    ``zope-sendmail`` program's, both from `zope.sendmail.options`, are
    its keyword arguments.
    """

    def __init__(self, interval=3.0, mailer=None, queuePath=None,
                 maildir=None, retry=None, connections=8, max_messages=100,
                 housekeeping=3600.0, lease='auto', lease_timeout=120.0,
                 lease_renew=10.0, lease_margin=20.0, max_rate=None,
                 shared_group=False, notify=None, observer=None):
        # 7.3's name, which sites' thread dumps and monitoring know.
        super().__init__(name='zope.sendmail.queue.QueueProcessorThread',
                         daemon=True)
        if interval <= 0:
            raise ValueError(f'interval must be positive, not {interval!r}')
        self.interval = interval
        self.mailer = mailer
        self.maildir = maildir
        self.shared_group = shared_group
        self.store_options = {'lease': lease, 'lease_timeout': lease_timeout,
                              'lease_renew': lease_renew,
                              'lease_margin': lease_margin}
        check_options(queuePath, **self.store_options)
        self.notify = notify
        self.observer = observer
        self._store = None
        if queuePath is not None:
            self.setQueuePath(queuePath)
        self.retry = retry or RetryPolicy(interval)
        self.connections = connections
        self.max_messages = max_messages
        self.max_rate = max_rate
        self.housekeeping = housekeeping
        self._processor = None
        self._waiter = None  # the store's, once started
        self._stopping = threading.Event()

    def __repr__(self):
        return f'<QueueProcessorThread {self.queuePath!r} every' \
               f' {self.interval:g} s>'

    # 7.3's setters, kept for its users.

    def setMailer(self, mailer):
        self.mailer = mailer

    def setQueuePath(self, path):
        store = open_store(path, shared_group=getattr(
            self, 'shared_group', False), **self._options())
        self.maildir = getattr(store, 'maildir', None)
        self._set_store(store)

    def setMaildir(self, maildir):
        self.maildir = maildir

    def _options(self):
        # A subclass of 7.3's kind may not call __init__.
        return getattr(self, 'store_options', {})

    def _set_store(self, store):
        old, self._store = getattr(self, '_store', None), store
        if old is not None and old is not store:
            old.close()  # its lease, if it held one

    @property
    def store(self):
        """The `IQueueStore` this thread processes (None until it has a
        queue): the queue at ``queuePath``, or the folder given to
        ``setMaildir`` (or assigned to ``maildir``, as 7.3 allowed),
        whose own listing then says what the queue holds."""
        store = getattr(self, '_store', None)
        if self.maildir is not None and (
                store is None or getattr(store, 'maildir', None) is not
                self.maildir):
            store = open_store(self.maildir, **self._options())
            self._set_store(store)
        return store

    @property
    def queuePath(self):
        """The Maildir directory as given, or the store's name (a URL
        without its password)."""
        store = self.store
        return None if store is None else getattr(store, 'path', store.name)

    @property
    def pollingInterval(self):
        return int(self.interval * 1000)

    @property
    def lease(self):
        """The store's processor lease, when it uses one, else None."""
        return getattr(self.store, 'lease', None)

    @property
    def processor(self):
        """The `QueueProcessor` doing the passes, for the current mailer
        and store."""
        store = self.store
        if self.mailer is None or store is None:
            raise ValueError(f'{self!r} needs a mailer and a queue'
                             f' (setMailer, setQueuePath) before it can run')
        processor = self._processor
        if processor is None or processor.mailer is not self.mailer \
                or processor.store is not store:
            events = {} if self.notify is None else {'notify': self.notify}
            processor = self._processor = QueueProcessor(
                self.mailer, store, connections=self.connections,
                max_messages=self.max_messages, retry=self.retry,
                max_rate=self.max_rate, housekeeping=self.housekeeping,
                observer=getattr(self, 'observer', None), **events)
            processor.stopping = self._stopping
        return processor

    def process_once(self):
        """One pass (after the store's housekeeping, when it is due), in
        the caller's thread; returns the pass's `PassResult`.  The console
        program and tests call this."""
        return self.processor.process()

    def standby_wait(self):
        """After a pass that found this processor a standby, for a run that
        would otherwise end (a one-shot ``zope-sendmail``): wait a moment
        while the queue's holder may be dead; True to make another pass,
        False once a live holder was seen, after the store's takeover
        bound, or when interrupted (`IQueueStore.standby_wait`)."""
        return self.store.standby_wait(self._stopping)

    def interrupt(self):
        """Start no new message: the pass in progress (in this thread or in
        the caller's, `process_once`) ends once the messages being sent
        are; the thread, if running, ends after it.  Unlike `stop`, waits
        for nothing and gives up nothing (the queue's lease): callable
        from a signal handler."""
        self._stopping.set()
        self.wake()

    def start(self):
        self.processor  # fail here, in the caller, if not configured
        self._waiter = self.store.waiter()
        registry.add(self, self.store.key)
        try:
            super().start()
        except BaseException:
            registry.discard(self)
            raise

    def run(self, forever=True):
        """The thread's loop; ``run(forever=False)`` makes one pass in the
        caller's thread instead, as 7.3's did."""
        if not forever:
            self.process_once()
            return
        try:
            self._loop()
        finally:
            registry.discard(self)
            self._waiter.close()

    def _loop(self):
        failures = 0
        while not self._stopping.is_set():
            try:
                result = self.process_once()
            except Exception:
                # The thread must outlive any bug or surprise (a queue
                # directory removed under it); it retries after backoff.
                log.exception('%r: pass failed', self)
                result = None
            if result is not None and result.standby:
                failures = 0  # the store wakes us when we may work
                self._pause(self.interval, wakeable=True)
            elif result is None or result.error is not None:
                failures += 1
                self._pause(self.retry.delay(failures), wakeable=False)
            else:
                failures = 0
                delay = 0.0 if result.more else self.interval
                if result.next_due is not None:
                    delay = min(delay, max(
                        0.0, result.next_due - self.store.now()))
                self._pause(delay, wakeable=True)

    def _pause(self, delay, wakeable):
        """Wait *delay* seconds; a commit (the store's waiter) ends the
        wait early unless the relay is in trouble, so that commits do not
        hammer it."""
        deadline = time.monotonic() + delay
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._waiter.wait(left) and wakeable:
                break

    def wake(self):
        """Start the next pass now (a message was queued)."""
        waiter = self._waiter
        if waiter is not None:
            waiter.wake()

    def stop(self, timeout=None):
        """Stop the thread: no new message is started, the ones being sent
        finish.  Waits for it at most *timeout* seconds (None: as long as
        that takes); returns whether it has stopped."""
        self.interrupt()
        if self.is_alive():
            self.join(timeout)
        if not self.is_alive():
            registry.discard(self)
        store = getattr(self, '_store', None)
        if store is not None and not self.is_alive():
            store.close(timeout)  # a standby may take over at once
        return not self.is_alive()
