"""What a queue processor tells its observer (`IProcessingObserver`),
against the test SMTP server: each outcome once, the relay's conditions,
the relay named, and an observer that breaks costs no message."""
import threading

from zope.sendmail.tests.support.processor import ProcessorTestBase


class RecordingObserver:
    """Records what it is told, as (method, queue, relay) tuples; the
    seconds of ``sent`` in ``seconds``."""

    def __init__(self):
        from zope.interface import alsoProvides
        from zope.sendmail.interfaces import IProcessingObserver
        alsoProvides(self, IProcessingObserver)
        self.told = []
        self.seconds = []
        self._lock = threading.Lock()

    def sent(self, queue, relay, seconds):
        with self._lock:
            self.told.append(('sent', queue, relay))
            self.seconds.append(seconds)

    def _record(name):
        def record(self, queue, relay=None):
            with self._lock:
                self.told.append((name, queue, relay))
        return record

    deferred = _record('deferred')
    rejected = _record('rejected')
    expired = _record('expired')
    throttled = _record('throttled')
    connection_refused = _record('connection_refused')
    del _record


class BrokenObserver(RecordingObserver):

    def sent(self, queue, relay, seconds):
        raise RuntimeError('a bug in the metrics')


class NullObserverTests(ProcessorTestBase):

    def test_interface(self):
        from zope.interface.verify import verifyObject
        from zope.sendmail.interfaces import IProcessingObserver
        from zope.sendmail.processing.observer import NullObserver
        observer = NullObserver()
        verifyObject(IProcessingObserver, observer)
        self.assertIsNone(observer.sent('q', 'r', 1.0))
        verifyObject(IProcessingObserver, RecordingObserver())

    def test_observing_interface(self):
        from zope.interface.verify import verifyObject
        from zope.sendmail.interfaces import IObserving
        from zope.sendmail.processing.observer import Observing
        observing = Observing(None, 'q')
        verifyObject(IObserving, observing)
        observing.tell('sent', 'relay', 0.1)  # the NullObserver: nothing

    def test_relay_names(self):
        from zope.sendmail.processing.observer import mailer_relay
        from zope.sendmail.processing.observer import relay_name
        from zope.sendmail.smtp.mailer import SMTPMailer
        mailer = SMTPMailer('smtp.example.com', 587, username='u',
                            password='s3cret')
        self.assertEqual(mailer_relay(mailer), 'smtp.example.com:587')
        self.assertEqual(mailer_relay(object()), 'unknown')
        self.assertEqual(relay_name(object(), 'dflt'), 'dflt')
        connection = type('C', (), {'relay': 'b.example:25\x1b'})()
        self.assertEqual(relay_name(connection, 'dflt'), 'b.example:25\\x1b')
        self.assertEqual(len(relay_name(
            type('C', (), {'relay': 'x' * 1000})())), 203)


class ObserverTests(ProcessorTestBase):

    def _processor(self, observer, **kw):
        processor = self._makeOne(observer=observer, **kw)
        self.relay = f'{self.layer.server.host}:{self.layer.server.port}'
        self.name = processor.store.name
        return processor

    def test_each_outcome_once(self):
        observer = RecordingObserver()
        self._queue(['bob@example.com'], ['carl@example.com'],
                    ['reject@example.com'], ['tempfail@example.com'])
        result = self._processor(observer).process()
        self.assertEqual(dict(result.counts),
                         {'sent': 2, 'rejected': 1, 'deferred': 1})
        self.assertEqual(sorted(observer.told), [
            ('deferred', self.name, self.relay),
            ('rejected', self.name, self.relay),
            ('sent', self.name, self.relay),
            ('sent', self.name, self.relay)])
        self.assertTrue(all(0 < s < 5 for s in observer.seconds),
                        observer.seconds)

    def test_expired_is_not_also_rejected(self):
        observer = RecordingObserver()
        self._queue(['tempfail@example.com'])
        processor = self._processor(observer)
        processor.process()
        self.now += 2 * 86400  # past the retry policy's lifetime
        self.assertEqual(processor.process().counts['rejected'], 1)
        self.assertEqual(observer.told, [
            ('deferred', self.name, self.relay),
            ('expired', self.name, None)])

    def test_a_connection_turned_away(self):
        observer = RecordingObserver()
        self._queue(['bob@example.com'])
        self.layer.server.max_connections = 0
        result = self._processor(observer).process()
        self.assertIsNotNone(result.error)
        self.assertEqual(observer.told, [
            ('connection_refused', self.name, self.relay)])

    def test_a_connection_turned_away_by_the_relay_of_a_failover(self):
        from zope.sendmail.mailer import FailoverMailer
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.testserver import SMTPTestServer
        busy = SMTPTestServer().start()
        self.addCleanup(busy.stop)
        busy.max_connections = 0
        server = self.layer.server
        mailer = FailoverMailer([SMTPMailer(busy.host, busy.port, timeout=5),
                                 SMTPMailer(server.host, server.port,
                                            timeout=5)])
        observer = RecordingObserver()
        self._queue(['bob@example.com'])
        processor = self._makeOne(mailer=mailer, observer=observer)
        processor.process()
        self.assertIn(('connection_refused', processor.store.name,
                       f'{busy.host}:{busy.port}'), observer.told)

    def test_throttled(self):
        observer = RecordingObserver()
        self._queue(['bob@example.com'], ['carl@example.com'])
        self.layer.server.max_rate = 1
        result = self._processor(observer, connections=1).process()
        self.assertEqual(result.counts['sent'], 2, result)
        told = [what for what, queue, relay in observer.told]
        self.assertEqual(told.count('sent'), 2)
        self.assertGreaterEqual(told.count('throttled'), 1)

    def test_a_broken_observer_costs_no_message(self):
        observer = BrokenObserver()
        self._queue(['bob@example.com'], ['carl@example.com'])
        result = self._processor(observer).process()
        self.assertEqual(result.counts['sent'], 2)
        self.assertEqual(len(self.layer.server.messages), 2)
