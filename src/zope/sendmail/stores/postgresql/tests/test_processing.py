"""The queue processor on a PostgreSQL queue, end to end: transactions
queue through `QueuedMailDelivery`, processor threads send through the SMTP
test server; refusals, deferrals and two processors at once."""
import collections
import email

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresTestCase


def message_id(message):
    return email.message_from_bytes(message.data)['Message-Id']


class ProcessingCase(PostgresTestCase):
    """A PostgreSQL queue, the SMTP test server, processors and
    deliveries on them."""

    def setUp(self):
        super().setUp()
        from zope.sendmail.events import dispatcher
        from zope.sendmail.testserver import SMTPTestServer
        transaction.abort()
        self.addCleanup(transaction.abort)
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.server = SMTPTestServer().start()
        self.addCleanup(self.server.stop)
        self.addCleanup(dispatcher.stop)
        self.url = self.layer.url()
        self.events = []

    def store(self, **options):
        from zope.sendmail.stores.postgresql import open_postgres_store
        store = open_postgres_store(self.url, **options)
        self.addCleanup(store.close, 10)
        return store

    def processor(self, store, **kw):
        from zope.sendmail.processing.thread import QueueProcessorThread
        from zope.sendmail.smtp.mailer import SMTPMailer
        mailer = SMTPMailer(self.server.host, self.server.port, timeout=5)
        kw.setdefault('interval', 30)  # woken by commits, not by polls
        thread = QueueProcessorThread(mailer=mailer, queuePath=store,
                                      notify=self.events.append, **kw)
        self.addCleanup(thread.stop, 10)
        return thread

    def send(self, count, toaddrs=('bob@example.com',)):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.store())
        ids = [delivery.send('alice@example.com', list(toaddrs),
                             b'Subject: %d\n\nbody\n' % n)
               for n in range(count)]
        transaction.commit()
        return ids


class ProcessingTests(ProcessingCase):

    def test_committed_mail_goes_out_at_once(self):
        thread = self.processor(self.store())
        thread.start()
        ids = self.send(3)
        messages = self.server.wait_for(3, timeout=10)
        self.assertEqual(sorted(message_id(m) for m in messages),
                         sorted(f'<{i}>' for i in ids))
        self.assertTrue(wait_until(
            lambda: thread.store.status().counts ==
            {'sending': 0, 'queued': 0, 'deferred': 0, 'rejected': 0}, 5))

    def test_an_aborted_transaction_queues_nothing(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        store = self.store()
        QueuedMailDelivery(store).send('alice@example.com', ['b@x.org'],
                                       b'Subject: no\n\nbody\n')
        transaction.abort()
        self.assertEqual(store.status().counts['queued'], 0)

    def test_refused_and_deferred(self):
        store = self.store()
        self.server.refuse('reject@example.com', 550, '5.1.1 no such user')
        self.server.refuse('later@example.com', 451, '4.3.0 try again')
        ids = self.send(1, ('bob@example.com', 'reject@example.com',
                            'later@example.com'))
        thread = self.processor(store)
        result = thread.process_once()
        self.assertEqual(result.counts['deferred'], 1)
        [message] = self.server.messages
        self.assertEqual(message.rcpt_tos, ['bob@example.com'])
        [listed] = store.entries()
        self.assertEqual((listed.state, list(listed.toaddrs),
                          listed.attempts),
                         ('deferred', ['later@example.com'], 1))
        self.assertIn('451', listed.last_error)
        self.assertTrue(wait_until(lambda: len(self.events) >= 2, 5))
        kinds = collections.Counter(type(e).__name__ for e in self.events)
        self.assertEqual(kinds, {'MailSentEvent': 1, 'MailErrorEvent': 1})
        self.assertEqual({e.messageId for e in self.events}, set(ids))

    def test_two_processors_send_each_message_once(self):
        threads = [self.processor(self.store(), connections=2)
                   for n in range(2)]
        for thread in threads:
            thread.start()
        ids = []
        for n in range(10):
            ids += self.send(5)
        messages = self.server.wait_for(50, timeout=30)

        def drained():
            counts = threads[0].store.status().counts
            return counts['queued'] == counts['sending'] == 0
        self.assertTrue(wait_until(drained, 10))
        sent = collections.Counter(message_id(m)
                                   for m in self.server.messages)
        self.assertEqual(sent, {f'<{i}>': 1 for i in ids})
        self.assertGreaterEqual(len(messages), 50)

    def sessions(self):
        """Sessions the test database has seen (the server's count,
        PostgreSQL 14 and later)."""
        [(version,)] = self.layer.psql('SHOW server_version_num')
        if int(version) < 140000:
            self.skipTest('PostgreSQL counts sessions from version 14 on')
        [(count,)] = self.layer.psql(
            'SELECT sessions FROM pg_stat_database'
            ' WHERE datname = current_database()')
        return count

    def test_a_pass_opens_no_connection_per_message(self):
        # Each of a pass's connection threads takes a database connection
        # from the store's pool for every claim and every disposal: the
        # pool keeps enough of them idle for all the threads of a
        # processor with its default 8 connections, so that a pass
        # connects a few times, not every few messages.
        store = self.store()
        self.send(600)
        thread = self.processor(store)
        before = self.sessions()
        result = thread.process_once()
        self.assertEqual(result.counts['sent'], 600)
        thread.stop(10)
        # Claims and disposals on sessions of two kinds (not waiting for
        # the disk, and waiting), up to nine of each; the holder's lock,
        # the pass's listing, and the sessions asking for the count.
        self.assertLessEqual(self.sessions() - before, 24)


class ClaimingAheadTests(ProcessingCase):
    """A connection claims several messages in one statement
    (`PostgresStore.claim_ahead`): never more than it is about to send,
    and what it did not send is given back at once."""

    def claims(self):
        """The claims counted on the rows left in the queue."""
        from zope.sendmail.stores.postgresql import sql
        from zope.sendmail.stores.postgresql.url import QueueURL
        queue = QueueURL(self.url).queue
        return [count for (count,) in self.layer.psql(
            f'SELECT claims FROM {sql.TABLE} WHERE queue = %s ORDER BY id',
            (queue,))]

    def test_no_more_than_a_connection_sends(self):
        store = self.store()
        self.assertGreater(store.claim_ahead, 1)
        self.send(40)
        thread = self.processor(store, connections=1, max_messages=15)
        result = thread.process_once()
        self.assertEqual(result.counts['sent'], 15)
        self.assertEqual(result.counts['busy'], 0)
        # The 25 left were never claimed: nothing held, nothing counted.
        self.assertEqual(self.claims(), [0] * 25)
        self.assertEqual(store.status().counts['sending'], 0)
        thread.process_once()
        thread.process_once()
        self.assertEqual(len(self.server.messages), 40)
        self.assertEqual(self.claims(), [])

    def counting_store(self):
        """A store that notes how many messages each claim asks for."""
        from zope.sendmail.stores.postgresql.store import PostgresStore

        class CountingStore(PostgresStore):
            def claim_many(self, entries):
                entries = list(entries)
                self.asked.append(len(entries))
                return super().claim_many(entries)
        store = CountingStore(self.url)
        store.asked = []
        self.addCleanup(store.close, 10)
        return store

    def test_a_fast_relay_gets_messages_claimed_ten_at_once(self):
        store = self.counting_store()
        self.send(40)
        thread = self.processor(store, connections=1)
        self.assertEqual(thread.process_once().counts['sent'], 40)
        # The first alone (how long a message takes is not known yet).
        self.assertEqual(store.asked[0], 1)
        self.assertEqual(sum(store.asked), 40)
        self.assertLessEqual(len(store.asked), 10)

    def test_a_slow_relay_gets_them_one_by_one(self):
        # At 50 ms a reply, a message takes longer than a connection
        # claims ahead for: other connections and processors may have
        # the rest.
        self.server.delay = 0.05
        store = self.counting_store()
        self.send(5)
        thread = self.processor(store, connections=1)
        self.assertEqual(thread.process_once().counts['sent'], 5)
        self.assertEqual(store.asked, [1] * 5)

    def test_a_burst_spreads_over_the_connections(self):
        # Forty messages through a relay answering late: a connection is
        # opened for every ten waiting (`RelaySchedule`), and each claims
        # no more than its share, so that all four get some.
        self.server.delay = 0.02
        store = self.store()
        self.send(40)
        thread = self.processor(store, connections=4)
        thread.process_once()
        self.assertEqual(len(self.server.messages), 40)
        self.assertEqual(len({m.peer for m in self.server.messages}), 4)

    def test_stopping_gives_back_the_claims_held(self):
        # A slow relay, a processor stopped while its connection holds
        # claims made ahead: they are released at once (not when their
        # lease runs out), and another processor sends them.
        self.server.delay = 0.05
        store = self.store()
        ids = self.send(30)
        thread = self.processor(store, connections=1)
        thread.start()
        self.assertTrue(wait_until(lambda: len(self.server.messages) >= 2,
                                   10))
        self.assertTrue(thread.stop(10))
        left = store.status().counts
        self.assertEqual(left['sending'], 0)
        self.assertGreater(left['queued'], 0)
        self.processor(self.store()).process_once()
        sent = collections.Counter(message_id(m)
                                   for m in self.server.messages)
        self.assertEqual(sent, {f'<{i}>': 1 for i in ids})
        self.assertEqual(self.claims(), [])

    def test_a_big_message_is_read_when_sent(self):
        # Claimed with others, a big message stays in the database until
        # its turn; then it is read, whole.
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.store())
        body = (b'y' * 70 + b'\n') * 4500  # 320 KB
        delivery.send('alice@example.com', ['bob@example.com'],
                      b'Subject: big\n\n' + body + b'\n')
        self.send(19)
        transaction.commit()
        self.processor(self.store(), connections=1).process_once()
        self.assertEqual(len(self.server.messages), 20)
        [big] = [m for m in self.server.messages if b'Subject: big' in
                 m.data]
        # Whole (the relay received it with CRLF line ends).
        self.assertEqual(big.data.count(b'y' * 70 + b'\r\n'), 4500)
