"""A queue processor on a PostgreSQL queue sending through a
FailoverMailer: the same failover as on a Maildir queue, the queue being
reached only through its store."""
import transaction

from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresTestCase


class PostgresFailoverTests(PostgresTestCase):

    def setUp(self):
        super().setUp()
        from zope.sendmail.events import dispatcher
        from zope.sendmail.stores.postgresql import open_postgres_store
        from zope.sendmail.testserver import SMTPTestServer
        transaction.abort()
        self.addCleanup(transaction.abort)
        self.addCleanup(dispatcher.stop)
        self.second = SMTPTestServer().start()
        self.addCleanup(self.second.stop)
        self.store = open_postgres_store(self.layer.url())
        self.addCleanup(self.store.close, 10)
        self.events = []

    def _processor(self, first_port, **kw):
        from zope.sendmail.mailer import FailoverMailer
        from zope.sendmail.processing.processor import QueueProcessor
        from zope.sendmail.smtp.mailer import SMTPMailer
        self.mailer = FailoverMailer(
            [SMTPMailer('127.0.0.1', first_port, timeout=5),
             SMTPMailer('127.0.0.1', self.second.port, timeout=5)], **kw)
        return QueueProcessor(self.mailer, self.store,
                              notify=self.events.append)

    def _queue(self, *subjects, to='bob@example.com'):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.store)
        for subject in subjects:
            delivery.send('alice@example.com', [to],
                          f'Subject: {subject}\n\nbody\n')
        transaction.commit()

    @staticmethod
    def _subjects(server):
        return [line.decode() for m in server.messages
                for line in m.data.split(b'\r\n')
                if line.startswith(b'Subject: ')]

    def test_second_while_first_down_first_once_back(self):
        from zope.sendmail.testserver import SMTPTestServer
        port = closed_port()
        processor = self._processor(port, retry_period=1.0)
        self._queue('down 1', 'down 2')
        self.assertEqual(processor.process().counts['sent'], 2)
        self.assertEqual(self._subjects(self.second),
                         ['Subject: down 1', 'Subject: down 2'])
        first = SMTPTestServer(port=port).start()
        self.addCleanup(first.stop)
        self.assertTrue(wait_until(lambda: not self.mailer.skipped(), 3))
        self._queue('back')
        self.assertEqual(processor.process().counts['sent'], 1)
        self.assertEqual(self._subjects(first), ['Subject: back'])
        self.assertEqual(self.store.status().counts['queued'], 0)

    def test_refused_message_never_offered_to_the_second(self):
        from zope.sendmail.testserver import SMTPTestServer
        first = SMTPTestServer().start()
        self.addCleanup(first.stop)
        first.refuse('nobody@example.com', 550, '5.1.1 no such user')
        processor = self._processor(first.port)
        self._queue('refused', to='nobody@example.com')
        self.assertEqual(processor.process().counts['rejected'], 1)
        self.assertEqual(self.second.connections, 0)
        self.assertEqual(self.store.status().counts['rejected'], 1)
