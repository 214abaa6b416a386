"""The metrics (``zope.sendmail[metrics]``): the counters an observer
keeps, the queues shown at scrape time (cached, bounded in time), the one
registration per registry, the HTTP server and the textfile."""
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest
import urllib.request

from zope.sendmail.tests.support.monitoring import make_queue
from zope.sendmail.tests.support.monitoring import parse
from zope.sendmail.tests.support.monitoring import queue_message


class HangingStore:
    """A store whose status never comes until ``release`` is set: a hard
    network mount that hangs."""

    name = key = 'hanging'

    def __init__(self):
        self.release = threading.Event()
        self.asked = 0

    def status(self):
        self.asked += 1
        self.release.wait(30)
        raise OSError('gave up')

    def now(self):
        return time.time()


class MetricsTestBase(unittest.TestCase):

    def setUp(self):
        from prometheus_client import CollectorRegistry
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-metrics-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.registry = CollectorRegistry()

    def _metrics(self, **kw):
        from zope.sendmail.monitoring.metrics import ProcessingMetrics
        return ProcessingMetrics(self.registry, **kw)

    def value(self, name, **labels):
        return self.registry.get_sample_value(name, labels)


class CounterTests(MetricsTestBase):

    def test_interfaces(self):
        from zope.interface.verify import verifyObject
        from zope.sendmail.interfaces import IMetricsCollector
        from zope.sendmail.interfaces import IMetricsServer
        from zope.sendmail.interfaces import IProcessingObserver
        from zope.sendmail.interfaces import IQueueMetrics
        from zope.sendmail.interfaces import IQueueView
        from zope.sendmail.monitoring.exposition import MetricsServer
        from zope.sendmail.monitoring.metrics import QueueView
        metrics = self._metrics()
        verifyObject(IProcessingObserver, metrics)
        verifyObject(IQueueMetrics, metrics)
        verifyObject(IMetricsCollector, metrics.queues)
        verifyObject(IQueueView, QueueView(HangingStore(), 5, 5))
        verifyObject(IMetricsServer, MetricsServer(self.registry, 0))

    def test_what_an_observer_is_told_is_counted(self):
        metrics = self._metrics()
        metrics.sent('q', 'a:25', 0.2)
        metrics.sent('q', 'a:25', 0.02)
        metrics.deferred('q', 'a:25')
        metrics.rejected('q', 'b:587')
        metrics.expired('q')
        metrics.throttled('q', 'a:25')
        metrics.connection_refused('q', 'b:587')
        value = self.value
        self.assertEqual(value('zope_sendmail_sent_total', queue='q',
                               relay='a:25'), 2)
        self.assertEqual(value('zope_sendmail_deferred_total', queue='q',
                               relay='a:25'), 1)
        self.assertEqual(value('zope_sendmail_rejected_total', queue='q',
                               relay='b:587'), 1)
        self.assertEqual(value('zope_sendmail_expired_total', queue='q'), 1)
        self.assertEqual(value('zope_sendmail_throttled_total',
                               relay='a:25'), 1)
        self.assertEqual(value('zope_sendmail_connections_refused_total',
                               relay='b:587'), 1)
        self.assertEqual(value('zope_sendmail_send_seconds_count',
                               relay='a:25'), 2)
        self.assertEqual(value('zope_sendmail_send_seconds_bucket',
                               relay='a:25', le='0.025'), 1)

    def test_registered_once_per_registry(self):
        from prometheus_client import REGISTRY
        from zope.sendmail.monitoring.metrics import metrics_for
        first = metrics_for(self.registry)
        self.assertIs(metrics_for(self.registry), first)
        # The default registry: a Zope process, its configuration loaded
        # again, the tests: never "Duplicated timeseries".
        default = metrics_for()
        self.assertIs(metrics_for(REGISTRY), default)
        self.assertIsNot(default, first)
        # Two queues, one registration.
        first.watch(self._store(make_queue(self.tmp)))
        other = os.path.join(self.tmp, 'other')
        first.watch(self._store(make_queue(other)))
        self.assertEqual(len(first.queues), 2)

    def _store(self, path):
        from zope.sendmail.stores import open_store
        return open_store(path, must_exist=True, create=False)


class QueueCollectorTests(MetricsTestBase):

    def _store(self, path):
        from zope.sendmail.stores import open_store
        store = open_store(path, must_exist=True, create=False)
        self.addCleanup(store.close)
        return store

    def test_messages_by_state_and_the_oldest(self):
        store = self._store(make_queue(self.tmp, messages=2))
        metrics = self._metrics(cache_seconds=0)
        metrics.watch(store)
        name = store.name
        self.assertEqual(self.value('zope_sendmail_messages', queue=name,
                                    state='queued'), 2)
        for state in ('sending', 'deferred', 'rejected'):
            self.assertEqual(self.value('zope_sendmail_messages',
                                        queue=name, state=state), 0)
        age = self.value('zope_sendmail_oldest_message_age_seconds',
                         queue=name)
        self.assertAlmostEqual(age, 120, delta=10)
        self.assertEqual(self.value('zope_sendmail_queue_readable',
                                    queue=name), 1)
        metrics.unwatch(store)
        self.assertIsNone(self.value('zope_sendmail_messages', queue=name,
                                     state='queued'))

    def test_cached_against_a_scrape_storm(self):
        path = make_queue(self.tmp, messages=1)
        store = self._store(path)
        self._metrics(cache_seconds=60).watch(store)
        self.assertEqual(self.value('zope_sendmail_messages',
                                    queue=store.name, state='queued'), 1)
        queue_message(path, 5, 'later')
        for n in range(50):
            self.assertEqual(self.value('zope_sendmail_messages',
                                        queue=store.name, state='queued'),
                             1)

    def test_a_queue_gone_is_unreadable(self):
        path = make_queue(self.tmp, messages=1)
        store = self._store(path)
        self._metrics(cache_seconds=0).watch(store)
        shutil.rmtree(path)
        open(path, 'w').close()  # something else in its place
        self.assertEqual(self.value('zope_sendmail_queue_readable',
                                    queue=store.name), 0)
        self.assertIsNone(self.value('zope_sendmail_messages',
                                     queue=store.name, state='queued'))

    def test_a_hanging_queue_holds_up_a_scrape_for_the_timeout_only(self):
        store = HangingStore()
        self.addCleanup(store.release.set)
        self._metrics(cache_seconds=0, timeout=0.2).watch(store)
        for n in range(3):
            started = time.monotonic()
            self.assertEqual(self.value('zope_sendmail_queue_readable',
                                        queue='hanging'), 0)
            self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(store.asked, 1)  # one look at a time
        store.release.set()


class ExpositionTests(MetricsTestBase):

    def test_served_over_http_until_stopped(self):
        from zope.sendmail.monitoring.exposition import MetricsServer
        metrics = self._metrics()
        metrics.sent('q', 'a:25', 0.1)
        server = MetricsServer(self.registry, 0).start()
        self.addCleanup(server.stop, 5)
        self.assertEqual(server.address, '127.0.0.1')
        url = f'http://127.0.0.1:{server.port}/metrics'
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        self.assertEqual(parse(text)[('zope_sendmail_sent_total', (
            ('queue', 'q'), ('relay', 'a:25')))], 1)
        # A second server on the same port: the caller's error.
        with self.assertRaises(OSError):
            MetricsServer(self.registry, server.port).start()
        self.assertTrue(server.stop(5))
        self.assertTrue(server.stop(5))  # harmless twice
        with self.assertRaises(OSError):
            with socket.create_connection(('127.0.0.1', server.port), 1):
                pass
        self.assertFalse([t for t in threading.enumerate()
                          if t.name == 'zope.sendmail metrics server'])

    def test_textfile_written_atomically(self):
        from zope.sendmail.monitoring.exposition import write_textfile
        metrics = self._metrics()
        path = os.path.join(self.tmp, 'zope_sendmail.prom')
        metrics.sent('q', 'a:25', 0.1)
        write_textfile(path, self.registry)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        with open(path) as old:
            metrics.sent('q', 'a:25', 0.1)
            write_textfile(path, self.registry)
            # A reader of the old file reads it whole: replaced, not
            # rewritten in place.
            self.assertEqual(parse(old.read())[(
                'zope_sendmail_sent_total', (('queue', 'q'),
                                             ('relay', 'a:25')))], 1)
        with open(path) as new:
            self.assertEqual(parse(new.read())[(
                'zope_sendmail_sent_total', (('queue', 'q'),
                                             ('relay', 'a:25')))], 2)
        self.assertEqual(os.listdir(self.tmp), ['zope_sendmail.prom'])
        # A directory that is not there: the caller's error, nothing left.
        with self.assertRaises(OSError):
            write_textfile(os.path.join(self.tmp, 'no', 'x.prom'),
                           self.registry)
