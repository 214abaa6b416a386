"""The metrics of a PostgreSQL queue (the test layer's cluster): its
messages by state and the age of its oldest one, read when scraped, and a
processor's counts, named by the queue's name."""
import transaction

from zope.sendmail.testserver import SMTPTestServer
from zope.sendmail.tests.support.postgres import PostgresTestCase


class PostgresMetricsTests(PostgresTestCase):

    def setUp(self):
        super().setUp()
        from prometheus_client import CollectorRegistry
        from zope.sendmail.stores import create_schema
        from zope.sendmail.stores import open_store
        self.url = self.layer.url()
        create_schema(self.url)
        self.store = open_store(self.url)
        self.addCleanup(self.store.close)
        self.registry = CollectorRegistry()

    def _queue(self, count):
        from zope.sendmail.delivery import QueuedMailDelivery
        transaction.abort()
        delivery = QueuedMailDelivery(self.url)
        self.addCleanup(delivery.store.close)  # its connections
        for n in range(count):
            delivery.send('alice@example.com', ['bob@example.com'],
                          f'Subject: {n}\r\n\r\nbody\r\n'.encode())
        transaction.commit()

    def value(self, name, **labels):
        return self.registry.get_sample_value(name, labels)

    def test_a_database_queue_scraped_and_sent(self):
        from zope.sendmail.monitoring.metrics import ProcessingMetrics
        from zope.sendmail.processing.processor import QueueProcessor
        from zope.sendmail.smtp.mailer import SMTPMailer
        metrics = ProcessingMetrics(self.registry, cache_seconds=0)
        metrics.watch(self.store)
        name = self.store.name
        self._queue(2)
        self.assertEqual(self.value('zope_sendmail_messages', queue=name,
                                    state='queued'), 2)
        self.assertGreaterEqual(self.value(
            'zope_sendmail_oldest_message_age_seconds', queue=name), 0)
        server = SMTPTestServer().start()
        self.addCleanup(server.stop)
        events = []  # not the dispatcher's thread
        processor = QueueProcessor(SMTPMailer(server.host, server.port),
                                   self.store, observer=metrics,
                                   notify=events.append)
        self.assertEqual(processor.process().counts['sent'], 2)
        self.assertEqual(len(events), 2)
        self.assertEqual(self.value(
            'zope_sendmail_sent_total', queue=name,
            relay=f'{server.host}:{server.port}'), 2)
        self.assertEqual(self.value('zope_sendmail_messages', queue=name,
                                    state='queued'), 0)
        self.assertIsNone(self.value(
            'zope_sendmail_oldest_message_age_seconds', queue=name))
        self.assertEqual(self.value('zope_sendmail_queue_readable',
                                    queue=name), 1)
