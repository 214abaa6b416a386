"""A delivery's vote on a PostgreSQL queue: one statement, its token, and
what becomes of a vote whose answer was lost -- on a real server, with the
connection really cut while the vote waits on a lock."""
import os
import socket
import threading
import uuid

from zope.interface.verify import verifyObject

from zope.sendmail.tests.support.pgstore import TABLE
from zope.sendmail.tests.support.pgstore import StoreTestBase
from zope.sendmail.tests.support import wait_until


VOTES = 'zope_sendmail_votes'


class VoteTestBase(StoreTestBase):
    """The store tests' base (a queue of the test's own, its store, rows
    read once what its stores sent is recorded), and the votes' table."""

    def clear_votes(self):
        """No tokens but the next ones (the database is every test's)."""
        self.layer.psql(f'DELETE FROM {VOTES}')

    def votes(self, where='true', params=None):
        return self.layer.psql(f'SELECT token, ids FROM {VOTES}'
                               f' WHERE {where}', params)


class VoteTests(VoteTestBase):

    def test_the_votes_provide_their_interface(self):
        from zope.sendmail.interfaces import IVotes
        self.assertTrue(verifyObject(IVotes, self.store.votes))

    def test_one_statement_for_the_batch(self):
        self.queue()  # the schema
        items = [self.store.add(f'{n}@x', 'a@x', ['b@x'], b'M')
                 for n in range(3)]
        pool = self.store.pool
        calls = []
        run, transaction = pool.run, pool.transaction
        pool.run = lambda *a, **kw: (calls.append('run'), run(*a, **kw))[1]
        pool.transaction = lambda *a, **kw: (calls.append('transaction'),
                                             transaction(*a, **kw))[1]
        self.store.vote(items)
        self.assertEqual(calls, ['run'])
        ids = [row[0] for row in self.rows()][1:]
        self.assertEqual(ids, [item.row_id for item in items])
        self.assertEqual(self.layer.psql(
            f'SELECT count(DISTINCT xmin::text) FROM {TABLE}'
            f' WHERE id = ANY(%s)', (ids,)), [(1,)])
        # Its token tells its rows, in one transaction with them.
        self.assertEqual(self.layer.psql(
            f'SELECT v.ids FROM {VOTES} v, {TABLE} m'
            f' WHERE m.id = %s AND v.xmin = m.xmin', (ids[0],)), [(ids,)])
        self.store.finish(items)

    def test_a_big_vote_is_one_transaction_of_several_statements(self):
        from zope.sendmail.stores.postgresql import sql
        count = sql.VOTE_ROWS * 2 + 5
        items = [self.store.add(f'{n}@x', 'a@x', [f'b{n}@x'], b'M%d' % n)
                 for n in range(count)]
        self.store.vote(items)
        rows = self.rows('id, message_id, toaddrs, message')
        self.assertEqual([row[0] for row in rows],
                         [item.row_id for item in items])
        self.assertEqual(rows[7][1:], ('7@x', ['b7@x'], b'M7'))
        self.assertEqual(self.layer.psql(
            f'SELECT count(DISTINCT xmin::text) FROM {TABLE}'
            f' WHERE queue = %s', (self.store.queue,)), [(1,)])
        [(token, ids)] = self.layer.psql(
            f'SELECT v.token, v.ids FROM {VOTES} v, {TABLE} m'
            f' WHERE m.id = %s AND v.xmin = m.xmin', (items[0].row_id,))
        self.assertEqual(ids, [item.row_id for item in items])
        self.store.discard(items)  # aborted after all: the rows go
        self.assertEqual(self.rows(), [])

    def test_refused_rows_queue_nothing(self):
        from zope.sendmail.interfaces import QueueError
        self.queue()
        self.clear_votes()
        item = self.store.add('x@x', 'a@x\x00', ['b@x'], b'M')
        with self.assertRaisesRegex(QueueError, 'cannot queue 1'):
            self.store.vote([item])
        self.assertEqual(len(self.rows()), 1)
        self.assertEqual(self.votes(), [])

    def test_the_votes_table_stays_small(self):
        from zope.sendmail.stores.postgresql.vote import SETTLE_AT
        other = self.open(self.layer.url())
        self.clear_votes()
        for _ in range(5 * SETTLE_AT):
            self.queue()
            self.queue(other)
        # Each store object's settled tokens are deleted by its later
        # votes, a few at a time.
        mine = len(self.votes())
        self.assertGreater(mine, 0)
        self.assertLessEqual(mine, 2 * (SETTLE_AT + 1))
        # Tokens an hour old (a process that ended) go at housekeeping;
        # the others stay.
        old = uuid.uuid4()
        self.layer.psql(f"INSERT INTO {VOTES} (token, voted_at) VALUES"
                        f" (%s, clock_timestamp() - interval '61 minutes')",
                        (old,))
        self.store.housekeeping()
        self.assertEqual(self.votes('token = %s', (old,)), [])
        self.assertEqual(len(self.votes()), mine)

    def test_a_database_without_the_votes_table_gets_it(self):
        # Version 1 of the schema came without it (unreleased): a store
        # opened on such a database creates it.
        self.queue()
        self.layer.psql(f'DROP TABLE {VOTES}')
        store = self.open()
        self.queue(store)
        self.assertEqual(len(self.votes()), 1)
        # Unless it may not create tables: it says how to add it.
        from zope.sendmail.interfaces import QueueError
        from zope.sendmail.stores.postgresql import open_postgres_store
        self.layer.psql(f'DROP TABLE {VOTES}')
        store = open_postgres_store(self.url, create=False)
        self.addCleanup(store.close)
        with self.assertRaisesRegex(QueueError, 'no zope_sendmail_votes'
                                    ' table .* --create-schema'):
            store.ensure_schema()
        self.open().ensure_schema()

    def test_a_big_vote_whose_commit_was_cut_off(self):
        # Written in several statements, its COMMIT's answer lost: the
        # question finds its token, and every id.
        from zope.sendmail.stores.postgresql import sql
        from zope.sendmail.stores.postgresql.pool import CommitUnknown
        pool = self.store.pool
        transaction = pool.transaction
        calls = []

        def cut_off(*args, **kw):
            result = transaction(*args, **kw)
            if not calls:
                calls.append(1)
                raise CommitUnknown('server closed the connection')
            return result
        self.queue()
        pool.transaction = cut_off
        items = [self.store.add(f'{n}@x', 'a@x', ['b@x'], b'M')
                 for n in range(sql.VOTE_ROWS + 1)]
        self.store.vote(items)
        self.assertIn('it did commit', self.log.records[-1].getMessage())
        ids = [row[0] for row in self.rows()]
        self.assertEqual(ids[1:], [item.row_id for item in items])
        self.store.discard(items)
        self.assertEqual(len(self.rows()), 1)

    def test_an_idle_connection_found_dead_is_not_voted_on(self):
        # The server ended the idle session (a restart would too): the
        # pool sees it before sending a vote on it, whose outcome would
        # then be unknown.
        self.queue()
        self.layer.psql('SELECT pg_terminate_backend(pid) FROM'
                        " pg_stat_activity WHERE application_name ="
                        " 'zope.sendmail'")
        self.assertTrue(wait_until(lambda: self.layer.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name"
            " = 'zope.sendmail'") == [(0,)], 10))
        self.queue()
        self.assertEqual(len(self.rows()), 2)
        self.assertFalse([r for r in self.log.records
                          if 'lost during a vote' in r.getMessage()])


class LostAnswerTests(VoteTestBase):
    """The connection is cut (its socket shut for reading, as a network
    that drops) while the vote waits on a lock the test holds on the votes
    table; the vote then goes on, or is ended, on the server."""

    def setUp(self):
        super().setUp()
        self.queue()  # the schema; the first message
        self.clear_votes()
        self.holder = self.layer.cluster.connect()
        self.addCleanup(self.holder.close)
        # New connections from here on, each one seen.
        pool = self.store.pool
        pool.close()
        self.connections = []
        connect = pool.connect

        def seen(*args, **kw):
            conn = connect(*args, **kw)
            self.connections.append(conn)
            return conn
        pool.connect = seen

    def lock(self, table=VOTES):
        """Hold the vote back before it starts: the test holds a lock on
        *table* that the vote needs."""
        self.holder.execute('BEGIN')
        self.holder.execute(f'LOCK TABLE {table} IN EXCLUSIVE MODE')

    def waiting(self, count=1):
        """Wait until *count* sessions wait for the lock; their pids."""
        def pids():
            return [pid for pid, in self.layer.psql(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type"
                " = 'Lock' AND application_name = 'zope.sendmail'")]
        self.assertTrue(wait_until(lambda: len(pids()) >= count, 10),
                        pids())
        return pids()

    def vote_in_thread(self, items):
        outcome = []

        def vote():
            try:
                self.store.vote(items)
            except Exception as e:
                outcome.append(e)
            else:
                outcome.append(None)
        thread = threading.Thread(target=vote)
        thread.start()
        self.addCleanup(thread.join, 30)
        return thread, outcome

    def cut(self, conn):
        """Cut *conn* off: its reads find the end at once, and what the
        server sends it is lost."""
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RD)

    def gate_resolution(self):
        """Hold the resolution back until the event returned is set."""
        gate = threading.Event()
        started = threading.Event()
        pool = self.store.pool
        transaction = pool.transaction

        def held(*args, **kw):
            started.set()
            gate.wait(30)
            return transaction(*args, **kw)
        pool.transaction = held
        return gate, started

    def test_sent_and_deleted_before_the_question_still_committed(self):
        from zope.sendmail.interfaces import IClaimedMessage
        items = [self.store.add(f'{n}@x', 'a@x', ['b@x'], b'M')
                 for n in range(2)]
        gate, asking = self.gate_resolution()
        self.lock()
        thread, outcome = self.vote_in_thread(items)
        self.waiting()
        self.cut(self.connections[-1])
        self.assertTrue(asking.wait(10))  # the vote's answer is lost
        self.holder.execute('COMMIT')  # the vote goes on, and commits
        # A processor (another store object) sends and deletes its rows
        # before the question is asked.
        processor = self.open()
        processor.acquire()
        self.assertTrue(wait_until(
            lambda: len(processor.due().entries) == 3, 10))
        for entry in processor.due().entries:
            held = processor.claim(entry)
            verifyObject(IClaimedMessage, held)
            held.complete()
        self.assertEqual(self.rows(), [])
        gate.set()
        thread.join(30)
        self.assertEqual(outcome, [None])  # it did commit
        self.assertTrue(all(item.row_id for item in items))
        messages = [r.getMessage() for r in self.log.records]
        self.assertTrue(any('lost during a vote' in m for m in messages))
        self.assertTrue(any('it did commit' in m for m in messages))
        self.store.finish(items)

    def test_the_question_waits_for_a_vote_in_flight(self):
        from zope.sendmail.stores.postgresql.vote import SETTLE_AT
        # Votes whose tokens the next vote deletes; the test holds them,
        # so that the vote waits after it inserted its rows and token
        # (PostgreSQL runs the part of a statement that nothing reads
        # last).
        while len(self.store.votes._settled) < SETTLE_AT:
            self.queue()
        self.holder.execute('BEGIN')
        self.holder.execute(f'SELECT token FROM {VOTES} FOR UPDATE')
        items = [self.store.add('x@x', 'a@x', ['b@x'], b'M')]
        thread, outcome = self.vote_in_thread(items)
        self.waiting()
        self.cut(self.connections[-1])
        # The question (on a new connection) waits for the vote's
        # transaction, which waits for the test.
        self.waiting(2)
        self.holder.execute('COMMIT')
        thread.join(30)
        self.assertEqual(outcome, [None])
        self.assertIn('it did commit', self.log.records[-1].getMessage())
        ids = [row[0] for row in self.rows()]
        self.assertEqual(ids[-1], items[0].row_id)
        # Aborted after all: its row goes, its id known from its token.
        self.store.discard(items)
        self.assertEqual(len(self.rows()), len(ids) - 1)

    def test_a_question_before_the_vote_bars_it(self):
        from zope.sendmail.interfaces import QueueError
        # The vote waits for a lock on the queue's table, before it
        # started; the question, asked meanwhile, finds no token and
        # inserts it: the vote, once it goes on, fails on it.
        self.lock(TABLE)
        items = [self.store.add('x@x', 'a@x', ['b@x'], b'M')]
        thread, outcome = self.vote_in_thread(items)
        [pid] = self.waiting()
        self.cut(self.connections[-1])
        thread.join(30)
        [error] = outcome
        self.assertIsInstance(error, QueueError)
        self.assertIn('nothing was queued', str(error))
        self.holder.execute('COMMIT')
        self.assertTrue(wait_until(lambda: self.layer.psql(
            'SELECT count(*) FROM pg_stat_activity WHERE pid = %s',
            (pid,)) == [(0,)], 10))
        self.assertEqual(len(self.rows()), 1)
        [(token, ids)] = self.votes()
        self.assertIsNone(ids)  # the question's token, no vote's
        # The next votes delete it (with their own settled tokens).
        from zope.sendmail.stores.postgresql.vote import SETTLE_AT
        for _ in range(SETTLE_AT + 1):
            self.queue()
        self.assertEqual(self.votes('token = %s', (token,)), [])

    def test_a_vote_undone_on_the_server_fails(self):
        from zope.sendmail.interfaces import QueueError
        items = [self.store.add('x@x', 'a@x', ['b@x'], b'M')]
        gate, asking = self.gate_resolution()
        self.lock()
        thread, outcome = self.vote_in_thread(items)
        [pid] = self.waiting()
        self.cut(self.connections[-1])
        self.assertTrue(asking.wait(10))
        self.layer.psql('SELECT pg_terminate_backend(%s)', (pid,))
        self.holder.execute('COMMIT')
        gate.set()
        thread.join(30)
        [error] = outcome
        self.assertIsInstance(error, QueueError)
        self.assertIn('nothing was queued', str(error))
        self.store.discard(items)
        self.assertEqual(len(self.rows()), 1)
        # The question's token, no vote's.
        [(token, ids)] = self.votes()
        self.assertIsNone(ids)
