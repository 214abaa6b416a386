"""Metrics for Prometheus: what queue processors do, and how queues are.

Needs ``prometheus_client`` (the extra ``zope.sendmail[metrics]``):
importing this module without it raises ImportError, and nothing else of
the package imports it unless metrics are asked for.

`ProcessingMetrics` is an `IProcessingObserver` counting in one
``prometheus_client`` registry, every name prefixed ``zope_sendmail_``:

- ``zope_sendmail_sent_total{queue,relay}``,
  ``zope_sendmail_deferred_total{queue,relay}``,
  ``zope_sendmail_rejected_total{queue,relay}`` and
  ``zope_sendmail_expired_total{queue}``: what became of the messages;
- ``zope_sendmail_throttled_total{relay}`` and
  ``zope_sendmail_connections_refused_total{relay}``: how relays answered;
- ``zope_sendmail_send_seconds{relay}``, a histogram of the time one
  message takes on the wire;

and, read from the queues it watches (`ProcessingMetrics.watch`) when it is
scraped, by `QueueCollector`:

- ``zope_sendmail_messages{queue,state}``: the messages by state
  (``sending``, ``queued``, ``deferred``, ``rejected``);
- ``zope_sendmail_oldest_message_age_seconds{queue}``: the age of the
  oldest message not set aside (absent for an empty queue);
- ``zope_sendmail_queue_readable{queue}``: 1, or 0 when the last look at
  the queue failed or did not end in time (the other two are then absent).

A queue is looked at (`IQueueStore.status`) at most once per
``cache_seconds``, however many scrapes come, in a thread of its own that
a scrape waits for at most ``timeout`` seconds; while one look hangs (a
hard network mount), no other is started.  Labels name the queue by its
store's ``name`` and the relay as ``host:port``: never a password.

`metrics_for` gives the one `ProcessingMetrics` of a registry (the default
one by default), registering it there the first time: any number of
queues, configurations loaded again, and tests share it, so that
registering never raises ``Duplicated timeseries``.
"""
import logging
import threading
import time
import weakref

from prometheus_client import REGISTRY
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from zope.interface import implementer

from zope.sendmail.interfaces import IMetricsCollector
from zope.sendmail.interfaces import IProcessingObserver
from zope.sendmail.interfaces import IQueueMetrics
from zope.sendmail.interfaces import IQueueView
from zope.sendmail.interfaces import QueueError
from zope.sendmail.monitoring.facts import STATES
from zope.sendmail.monitoring.facts import oldest_age


log = logging.getLogger(__name__)

PREFIX = 'zope_sendmail_'

#: The buckets of ``zope_sendmail_send_seconds``: a message takes from
#: milliseconds (a relay on the same host) to minutes (a big one, a slow
#: relay).
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0, 60.0, 120.0, 300.0)

_registries = weakref.WeakKeyDictionary()  # registry -> ProcessingMetrics
_registries_lock = threading.Lock()


def metrics_for(registry=REGISTRY, **options):
    """The `ProcessingMetrics` of *registry*: made and registered there on
    the first call, the same object afterwards (*options* of
    `QueueCollector` count only then)."""
    with _registries_lock:
        metrics = _registries.get(registry)
        if metrics is None:
            metrics = _registries[registry] = ProcessingMetrics(
                registry, **options)
        return metrics


@implementer(IProcessingObserver, IQueueMetrics)
class ProcessingMetrics:
    """Counts what processors tell it in *registry* (a
    ``prometheus_client.CollectorRegistry``), where it registers its
    metrics and a `QueueCollector` (with *cache_seconds* and *timeout*) of
    the queues it `watch`es.  Prefer `metrics_for`, which registers one
    per registry."""

    def __init__(self, registry, cache_seconds=5.0, timeout=5.0):
        self.registry = registry
        self._sent = Counter(
            PREFIX + 'sent', 'Messages the relay accepted.',
            ['queue', 'relay'], registry=registry)
        self._deferred = Counter(
            PREFIX + 'deferred', 'Messages that failed for now and wait'
            ' for a later attempt.', ['queue', 'relay'], registry=registry)
        self._rejected = Counter(
            PREFIX + 'rejected', 'Messages set aside for good: refused'
            ' by the relay, or unreadable.', ['queue', 'relay'],
            registry=registry)
        self._expired = Counter(
            PREFIX + 'expired', 'Messages set aside as they waited longer'
            ' than their lifetime.', ['queue'], registry=registry)
        self._throttled = Counter(
            PREFIX + 'throttled', 'Times a relay said "too fast".',
            ['relay'], registry=registry)
        self._refused = Counter(
            PREFIX + 'connections_refused', 'Connections a relay turned'
            ' away.', ['relay'], registry=registry)
        self._seconds = Histogram(
            PREFIX + 'send_seconds', 'Seconds one message took on the'
            ' wire.', ['relay'], buckets=SEND_BUCKETS, registry=registry)
        self.queues = QueueCollector(cache_seconds, timeout)
        registry.register(self.queues)

    def __repr__(self):
        return f'<ProcessingMetrics of {len(self.queues)} queue(s)>'

    def watch(self, store):
        """Show the queue of *store* (an `IQueueStore`) at each scrape;
        a store of the same queue (`IQueueStore.key`) replaces it."""
        self.queues.watch(store)

    def unwatch(self, store):
        """Stop showing the queue of *store*; harmless when not shown."""
        self.queues.unwatch(store)

    # IProcessingObserver: counting only, never blocking nor raising.

    def sent(self, queue, relay, seconds):
        self._sent.labels(queue, relay).inc()
        self._seconds.labels(relay).observe(max(0.0, seconds))

    def deferred(self, queue, relay):
        self._deferred.labels(queue, relay).inc()

    def rejected(self, queue, relay):
        self._rejected.labels(queue, relay).inc()

    def expired(self, queue):
        self._expired.labels(queue).inc()

    def throttled(self, queue, relay):
        self._throttled.labels(relay).inc()

    def connection_refused(self, queue, relay):
        self._refused.labels(relay).inc()


@implementer(IQueueView)
class QueueView:
    """One watched queue: its status, read at most once per
    *cache_seconds*, in a thread a reader waits for at most *timeout*
    seconds."""

    def __init__(self, store, cache_seconds, timeout,
                 clock=time.monotonic):
        self.store = store
        self.name = store.name
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._looked = None   # when the last look ended
        self._found = None    # (status, now) of the last look, or None
        self._reader = None   # the thread of the look in progress
        self._problem = None  # why the last look failed, logged once

    def read(self):
        """``(status, now)`` of the queue, or None when it cannot be read
        now."""
        with self._lock:
            fresh = self._looked is not None and \
                self.clock() - self._looked < self.cache_seconds
            if fresh:
                return self._found
            reader = self._reader
            if reader is None or not reader.is_alive():
                reader = self._reader = threading.Thread(
                    target=self._look, daemon=True,
                    name='zope.sendmail metrics status reader')
                reader.start()
        reader.join(self.timeout)
        with self._lock:
            if reader.is_alive():
                self._say(f'no answer within {self.timeout:g} s')
                return None
            return self._found

    def _look(self):
        try:
            found, problem = (self.store.status(), self.store.now()), None
        except (QueueError, OSError) as e:
            # The queue's condition (a directory gone, a database down):
            # what the readable gauge shows; no bug, no traceback.
            found, problem = None, str(e)
        except Exception as e:
            log.exception('queue %s: unexpected error reading its status'
                          ' for the metrics', self.name)
            found, problem = None, f'unexpected error: {e!r}'
        with self._lock:
            self._found, self._looked = found, self.clock()
            if problem is None:
                self._problem = None
            else:
                self._say(problem)

    def _say(self, problem):
        # Called with the lock held.  Once per problem, not per scrape.
        if problem != self._problem:
            self._problem = problem
            log.warning('queue %s: cannot show it in the metrics: %s',
                        self.name, problem)


@implementer(IMetricsCollector)
class QueueCollector:
    """A ``prometheus_client`` collector of the watched queues' messages
    by state and oldest age, read when scraped (see `QueueView`)."""

    def __init__(self, cache_seconds=5.0, timeout=5.0):
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._lock = threading.Lock()
        self._views = {}  # store key -> QueueView

    def __len__(self):
        return len(self._views)

    def watch(self, store):
        view = QueueView(store, self.cache_seconds, self.timeout)
        with self._lock:
            self._views[store.key] = view

    def unwatch(self, store):
        with self._lock:
            view = self._views.get(store.key)
            if view is not None and view.store is store:
                del self._views[store.key]

    def describe(self):
        # Names only, read nothing: registering must not look at queues.
        return [self._messages(), self._oldest(), self._readable()]

    def _messages(self):
        return GaugeMetricFamily(
            PREFIX + 'messages', 'Messages in the queue by state.',
            labels=['queue', 'state'])

    def _oldest(self):
        return GaugeMetricFamily(
            PREFIX + 'oldest_message_age_seconds', 'Seconds since the'
            ' oldest message not set aside was queued.', labels=['queue'])

    def _readable(self):
        return GaugeMetricFamily(
            PREFIX + 'queue_readable', '1 when the queue could be read at'
            ' the last look, else 0.', labels=['queue'])

    def collect(self):
        messages, oldest, readable = \
            self._messages(), self._oldest(), self._readable()
        with self._lock:
            views = sorted(self._views.values(), key=lambda v: v.name)
        for view in views:
            found = view.read()
            readable.add_metric([view.name], 0 if found is None else 1)
            if found is None:
                continue
            status, now = found
            for state in STATES:
                messages.add_metric([view.name, state],
                                    status.counts.get(state, 0))
            age = oldest_age(status, now)
            if age is not None:
                oldest.add_metric([view.name], age)
        return [messages, oldest, readable]
