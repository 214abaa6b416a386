"""The thread that keeps a mail queue moving.

`QueueProcessorThread` repeats `QueueProcessor.process` (one pass over the
queue) every ``interval`` seconds, sooner when a deferred message falls due,
at once when a `QueuedMailDelivery` of this process commits to its queue
(`wake`), and less often, with exponential backoff, while the relay is
unreachable or refuses the mailer's settings.  ``stop()`` wakes it, lets
the messages in flight finish and joins it.
"""
import logging
import os
import threading
import time
import weakref

from zope.interface import implementer

from zope.sendmail.interfaces import IMailQueueProcessor
from zope.sendmail.stores.maildir.lease import ProcessorLease
from zope.sendmail.stores.maildir.leasefile import check_settings
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.stores.maildir.netfs import file_system
from zope.sendmail.stores.maildir.orphans import remove_orphans
from zope.sendmail.processing.passes import PassResult
from zope.sendmail.processing.processor import QueueProcessor
from zope.sendmail.processing.retry import RetryPolicy


log = logging.getLogger(__name__)

_threads = weakref.WeakSet()
_threads_lock = threading.Lock()


def wake(queue_path):
    """Wake the running processor threads of the queue at *queue_path*."""
    if not _threads:
        return  # no thread in this process: skip the path resolution
    path = os.path.realpath(queue_path)
    with _threads_lock:
        threads = [t for t in _threads if t._realpath == path]
    for thread in threads:
        thread.wake()


@implementer(IMailQueueProcessor)
class QueueProcessorThread(threading.Thread):
    """Processes the queue *maildir* (or the one at *queuePath*) through
    *mailer*, in a daemon thread.

    *retry*, *connections*, *max_messages* and *max_rate* configure the
    passes (see `QueueProcessor`); the processor keeps what it learns of
    the relay's limits (its `RelaySchedule`) from pass to pass.
    *housekeeping* is how often, in seconds, stale files are cleaned up.
    *lease* (``'auto'``, ``'on'`` or ``'off'``) says
    whether this processor sends only while it holds the queue's
    `ProcessorLease` (``'auto'``: on a network file system), with
    *lease_timeout*, *lease_renew* and *lease_margin*; a standby waits.
    *shared_group* is `Maildir`'s, for the queue at *queuePath*.
    """

    def __init__(self, interval=3.0, mailer=None, queuePath=None,
                 maildir=None, retry=None, connections=8, max_messages=100,
                 housekeeping=3600.0, lease='auto', lease_timeout=120.0,
                 lease_renew=10.0, lease_margin=20.0, max_rate=None,
                 shared_group=False):
        # 7.3's name, which sites' thread dumps and monitoring know.
        super().__init__(name='zope.sendmail.queue.QueueProcessorThread',
                         daemon=True)
        if interval <= 0:
            raise ValueError(f'interval must be positive, not {interval!r}')
        self.interval = interval
        self.mailer = mailer
        self.maildir = maildir
        self.shared_group = shared_group
        if queuePath is not None:
            self.setQueuePath(queuePath)
        self.retry = retry or RetryPolicy(interval)
        self.connections = connections
        self.max_messages = max_messages
        self.max_rate = max_rate
        self.housekeeping = housekeeping
        self.lease_mode = {True: 'on', False: 'off', None: 'auto'}.get(
            lease, lease)
        if self.lease_mode not in ('auto', 'on', 'off'):
            raise ValueError(f'lease must be auto, on or off, not {lease!r}')
        check_settings(lease_timeout, lease_renew, lease_margin)
        self.lease_settings = {'timeout': lease_timeout,
                               'renew': lease_renew, 'margin': lease_margin}
        self.lease = None  # the queue's ProcessorLease, when one is used
        self._last_housekeeping = None
        self._processor = None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._realpath = None

    def __repr__(self):
        path = self.maildir.path if self.maildir is not None else None
        return f'<QueueProcessorThread {path!r} every {self.interval:g} s>'

    # 7.3's setters, kept for its users.

    def setMailer(self, mailer):
        self.mailer = mailer

    def setQueuePath(self, path):
        self.maildir = Maildir(path, create=True,
                               shared_group=getattr(self, 'shared_group',
                                                    False))

    def setMaildir(self, maildir):
        self.maildir = maildir

    @property
    def queuePath(self):
        return self.maildir.path if self.maildir is not None else None

    @property
    def pollingInterval(self):
        return int(self.interval * 1000)

    @property
    def processor(self):
        """The `QueueProcessor` doing the passes, for the current mailer
        and maildir."""
        if self.mailer is None or self.maildir is None:
            raise ValueError(f'{self!r} needs a mailer and a queue'
                             f' (setMailer, setQueuePath) before it can run')
        processor = self._processor
        if processor is None or processor.mailer is not self.mailer \
                or processor.maildir is not self.maildir:
            fs = file_system(self.maildir.path)
            network = fs is not None and fs.network
            if self.lease_mode == 'on' or network and self.lease_mode == \
                    'auto':
                if self.lease is None or \
                        self.lease.queue_path != self.maildir.path:
                    self.lease = ProcessorLease(self.maildir.path,
                                                **self.lease_settings)
                    self.lease.on_acquire = self.wake
            processor = self._processor = QueueProcessor(
                self.mailer, self.maildir, connections=self.connections,
                max_messages=self.max_messages, retry=self.retry,
                may_send=self.lease.may_send if self.lease else None,
                stale_after=self.lease_settings['timeout'] if network
                else None, max_rate=self.max_rate)
            processor.stopping = self._stopping
        return processor

    def process_once(self):
        """One pass (after the housekeeping, when it is due); returns the
        pass's `PassResult`.  The console program and tests call this."""
        processor = self.processor
        if self.lease is not None:
            self.lease.start()
            if not self.lease.acquire():
                result = PassResult()
                result.standby = True
                return result
        now = time.time()
        if self._last_housekeeping is None or \
                now - self._last_housekeeping >= self.housekeeping:
            self._last_housekeeping = now
            self.maildir.cleanup(now=now)
            for sub in ('new', 'cur'):
                remove_orphans(os.path.join(self.maildir.path, sub), now=now)
        return processor.process()

    def start(self):
        self.processor  # fail here, in the caller, if not configured
        self._realpath = os.path.realpath(self.maildir.path)
        with _threads_lock:
            _threads.add(self)
        super().start()

    def run(self, forever=True):
        """The thread's loop; ``run(forever=False)`` makes one pass in the
        caller's thread instead, as 7.3's did."""
        if not forever:
            self.process_once()
            return
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
                failures = 0  # the lease's heartbeat wakes us when won
                self._pause(self.interval, wakeable=True)
            elif result is None or result.error is not None:
                failures += 1
                self._pause(self.retry.delay(failures), wakeable=False)
            else:
                failures = 0
                delay = 0.0 if result.more else self.interval
                if result.next_due is not None:
                    delay = min(delay, max(0.0, result.next_due - time.time()))
                self._pause(delay, wakeable=True)
        with _threads_lock:
            _threads.discard(self)

    def _pause(self, delay, wakeable):
        """Wait *delay* seconds; a commit (`wake`) ends the wait early
        unless the relay is in trouble, so that commits do not hammer it."""
        deadline = time.monotonic() + delay
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            woken = self._wakeup.wait(left)
            self._wakeup.clear()
            if woken and wakeable:
                break

    def wake(self):
        """Start the next pass now (a message was queued)."""
        self._wakeup.set()

    def stop(self, timeout=None):
        """Stop the thread: no new message is started, the ones being sent
        finish.  Waits for it at most *timeout* seconds (None: as long as
        that takes); returns whether it has stopped."""
        self._stopping.set()
        self._wakeup.set()
        if self.is_alive():
            self.join(timeout)
        with _threads_lock:
            _threads.discard(self)
        if self.lease is not None and not self.is_alive():
            self.lease.stop(timeout)  # a standby may take over at once
        return not self.is_alive()
