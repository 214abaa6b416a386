"""``zope-sendmail --check`` and ``--status --json`` on a PostgreSQL queue
(the throwaway cluster of the test layer): OK when empty, WARNING and
CRITICAL by the age of the oldest message, CRITICAL when the database
cannot be reached; never a password."""
import json

import transaction

from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.postgres import PostgresTestCase


class PostgresCheckTests(PostgresTestCase, ConsoleTestBase):

    def setUp(self):
        super().setUp()
        self.url = self.layer.url()
        status, output, app = self._run('--create-schema', self.url)
        self.assertEqual(status, 0, output)

    def _queue(self, age):
        from zope.sendmail.delivery import QueuedMailDelivery
        transaction.abort()
        delivery = QueuedMailDelivery(self.url)
        self.addCleanup(delivery.store.close)  # its connections
        message_id = delivery.send(
            'alice@example.com', ['bob@example.com'],
            b'Subject: aged\r\n\r\nbody\r\n')
        transaction.commit()
        # As if queued *age* seconds ago.
        self.layer.psql(
            "UPDATE zope_sendmail_queue SET queued_at = queued_at -"
            " make_interval(secs => %s) WHERE message_id = %s",
            (age, message_id))

    def check(self, *args):
        status, output, app = self._run('--check', *args)
        self.assertEqual(output.count('\n'), 1, output)
        self.assertIn(' | ', output)
        return status, output.strip()

    def test_by_the_age_of_the_oldest_message(self):
        status, output = self.check('--max-age', '10m,1h', self.url)
        self.assertEqual(status, 0, output)
        self.assertTrue(output.startswith(f'OK - {self.url}: 0 queued'),
                        output)
        self.assertTrue(output.endswith(
            "'oldest_age'=0s;600;3600;0"), output)
        self._queue(1200)
        status, output = self.check('--max-age', '10m,1h', self.url)
        self.assertEqual(status, 1, output)
        self.assertIn('oldest message queued 20 min ago (over 10 min);'
                      ' 1 queued', output)
        self._queue(7300)
        status, output = self.check('--max-age', '10m,1h', self.url)
        self.assertEqual(status, 2, output)
        self.assertRegex(output, r"'queued'=2;;;0 'sending'=0;;;0 "
                                 r"'deferred'=0;;;0 'rejected'=0;;;0 "
                                 r"'oldest_age'=730\ds;600;3600;0$")
        status, output, app = self._run('--status', '--json', self.url)
        found = json.loads(output)
        self.assertEqual(found['counts']['queued'], 2)
        self.assertAlmostEqual(found['oldest_age'], 7300, delta=30)

    def test_the_database_stopped_is_critical_and_unreadable(self):
        from prometheus_client import CollectorRegistry

        from zope.sendmail.monitoring.metrics import ProcessingMetrics
        from zope.sendmail.stores import open_store
        self._queue(60)
        store = open_store(self.url)
        self.addCleanup(store.close)
        registry = CollectorRegistry()
        ProcessingMetrics(registry, cache_seconds=0).watch(store)
        readable = {'queue': store.name}
        self.assertEqual(registry.get_sample_value(
            'zope_sendmail_queue_readable', readable), 1)
        self.layer.stop()
        # Started again below; here too should the test fail before.
        self.addCleanup(lambda: self.layer.cluster.running or
                        self.layer.start())
        status, output = self.check('--max-age', '1h', self.url)
        self.assertEqual(status, 2, output)
        self.assertTrue(output.startswith('CRITICAL - queue postgresql://'),
                        output)
        self.assertIn("'oldest_age'=U;3600;;0", output)
        self.assertEqual(registry.get_sample_value(
            'zope_sendmail_queue_readable', readable), 0)
        self.assertIsNone(registry.get_sample_value(
            'zope_sendmail_messages', dict(readable, state='queued')))
        self.layer.start()
        self.assertEqual(registry.get_sample_value(
            'zope_sendmail_messages', dict(readable, state='queued')), 1)

    def test_a_database_that_refuses_is_critical(self):
        password = 'pg-check-53cr3t'
        url = (f'postgresql://nobody:{password}@/nodb?host='
               f'{self.layer.cluster.data}-no-socket&queue=q')
        status, output, app = self._run('--check', url)
        self.assertEqual(status, 2, output)
        self.assertNotIn(password, output)
        last = output.strip().splitlines()[-1]
        self.assertTrue(last.startswith(
            'CRITICAL - queue postgresql://nobody:***@/nodb?host='), last)
        self.assertIn("'oldest_age'=U;;;0", last)
