"""What the PostgreSQL store does beyond the contract: its schema, leases
tied to the holder's session, tokens, rows written by hand, commits cut
off, and the database going away -- on a real server."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from zope.interface.verify import verifyObject

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.pgstore import TABLE
from zope.sendmail.tests.support.pgstore import StoreTestBase
from zope.sendmail.tests.support.postgres import PostgresTestCase


# A child that claims the first due message and waits; SIGSTOP pauses it
# (alive, its session open), SIGKILL ends it.
HOLDER = '''
import sys, time
from zope.sendmail.stores.postgresql import open_postgres_store
store = open_postgres_store(sys.argv[1], lease_timeout=float(sys.argv[2]))
store.acquire()
held = store.claim(store.due().entries[0])
print('claimed' if held is not None else 'busy', flush=True)
time.sleep(120)
'''

# A child creating the schema, at a time given, for the race.
CREATOR = '''
import sys, time
from zope.sendmail.stores.postgresql import create_schema
time.sleep(max(0, float(sys.argv[2]) - time.time()))
print(create_schema(sys.argv[1]), flush=True)
'''


class ObjectsTests(StoreTestBase):

    def test_every_object_provides_its_interface(self):
        from zope.sendmail.interfaces import IClaimedMessage
        from zope.sendmail.interfaces import IDueMessages
        from zope.sendmail.interfaces import IListedMessage
        from zope.sendmail.interfaces import IQueueEntry
        from zope.sendmail.interfaces import IQueueStatus
        from zope.sendmail.interfaces import IQueueStore
        from zope.sendmail.interfaces import IQueueWaiter
        from zope.sendmail.interfaces import IRetryState
        from zope.sendmail.stores.postgresql import PostgresStore
        self.assertIsInstance(self.store, PostgresStore)
        self.assertTrue(verifyObject(IQueueStore, self.store))
        self.queue()
        due = self.store.due()
        self.assertTrue(verifyObject(IDueMessages, due))
        self.assertTrue(verifyObject(IQueueEntry, due.entries[0]))
        held = self.claim()
        self.assertTrue(verifyObject(IClaimedMessage, held))
        self.assertTrue(verifyObject(IRetryState, held.retry))
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        self.assertTrue(verifyObject(IQueueWaiter, waiter))
        self.assertTrue(verifyObject(IQueueStatus, self.store.status()))
        [listed] = self.store.entries()
        self.assertTrue(verifyObject(IListedMessage, listed))
        self.assertEqual(listed.state, 'sending')

    def test_every_part_provides_its_interface(self):
        from zope.sendmail.interfaces import IConnectionPool
        from zope.sendmail.interfaces import ILeaseKeeper
        from zope.sendmail.interfaces import IQueueListener
        self.assertTrue(verifyObject(IConnectionPool, self.store.pool))
        self.store.acquire()
        self.assertTrue(verifyObject(ILeaseKeeper, self.store._keeper))
        self.store.waiter().close()
        self.assertTrue(verifyObject(IQueueListener, self.store._listener))

    def test_names(self):
        url = self.layer.url(queue='named')
        # Not a word a temporary directory's random name may hold.
        store = self.open(url.replace('postgres@', 'postgres:Pw-Secret@'))
        self.assertEqual(store.name,
                         url.replace('postgres@', 'postgres:***@'))
        self.assertNotIn('Pw-Secret', store.key)
        self.assertEqual(store.key, self.open(url).key)
        self.assertNotIn('Pw-Secret', repr(store))
        self.queue(store)
        [entry] = store.due().entries
        self.assertEqual(entry.name, f'pg-{entry.row_id}')
        self.assertEqual(entry.location, f'{store.name}#{entry.row_id}')

    def test_queues_of_one_database_are_apart(self):
        other = self.open(self.layer.url())
        self.queue(n=2)
        self.queue(other)
        self.assertEqual(len(self.store.due().entries), 2)
        self.assertEqual(len(other.due().entries), 1)
        self.assertEqual(other.status().counts['queued'], 1)

    def test_bad_options(self):
        from zope.sendmail.stores.postgresql import open_postgres_store
        for options in ({'lease_timeout': 0}, {'lease_renew': 60},
                        {'pool_size': 0}, {'connect_timeout': -1}):
            with self.assertRaises(ValueError, msg=options):
                open_postgres_store(self.url, **options)
        with self.assertRaises(TypeError):
            open_postgres_store(self.url, durable=True)
        # The Maildir processor lease's settings mean nothing here.
        store = self.open(lease='auto', lease_timeout=120.0,
                          lease_renew=10.0, lease_margin=20.0)
        self.assertEqual((store.lease_timeout, store.lease_renew),
                         (120.0, 10.0))

    def test_now_is_the_servers_clock(self):
        [(server,)] = self.layer.psql(
            'SELECT extract(epoch FROM clock_timestamp())::float8')
        self.assertAlmostEqual(self.store.now(), server, delta=0.5)


class SchemaTests(StoreTestBase):

    def test_created_once_with_its_version(self):
        from zope.sendmail.stores.postgresql import create_schema
        from zope.sendmail.stores.postgresql import sql
        self.queue()  # created on first use, if another test did not
        self.assertFalse(create_schema(self.url))
        self.assertEqual(self.layer.psql(
            'SELECT version FROM zope_sendmail_schema'), [(sql.VERSION,)])

    def test_two_processes_racing_create_it_once(self):
        from zope.sendmail.testserver.postgres import DATABASE
        name = 'zope_sendmail_race'
        self.layer.cluster.execute(f'DROP DATABASE IF EXISTS {name}',
                                   dbname='postgres')
        self.layer.cluster.execute(f'CREATE DATABASE {name}',
                                   dbname='postgres')
        self.addCleanup(self.layer.cluster.execute,
                        f'DROP DATABASE {name} WITH (FORCE)',
                        dbname='postgres')
        url = self.url.replace(f'/{DATABASE}?', f'/{name}?')
        start = time.time() + 2
        children = [self.spawn(CREATOR, url, start) for n in range(2)]
        said = sorted(child.stdout.read() for child in children)
        self.assertEqual([child.wait(30) for child in children], [0, 0])
        self.assertEqual(said, [b'False\n', b'True\n'])
        self.assertEqual(self.layer.cluster.execute(
            'SELECT count(*) FROM zope_sendmail_schema', dbname=name),
            [(1,)])

    def test_a_newer_schema_is_refused(self):
        from zope.sendmail.interfaces import QueueError
        self.queue()
        self.layer.psql('INSERT INTO zope_sendmail_schema VALUES (99)')
        self.addCleanup(self.layer.psql,
                        'DELETE FROM zope_sendmail_schema WHERE version = 99')
        store = self.open()
        with self.assertRaisesRegex(QueueError, 'version 99'):
            store.status()

    def test_without_create_a_missing_schema_is_an_error(self):
        from zope.sendmail.interfaces import QueueError
        from zope.sendmail.testserver.postgres import DATABASE
        name = 'zope_sendmail_empty'
        self.layer.cluster.execute(f'DROP DATABASE IF EXISTS {name}',
                                   dbname='postgres')
        self.layer.cluster.execute(f'CREATE DATABASE {name}',
                                   dbname='postgres')
        self.addCleanup(self.layer.cluster.execute,
                        f'DROP DATABASE {name} WITH (FORCE)',
                        dbname='postgres')
        store = self.open(self.url.replace(f'/{DATABASE}?', f'/{name}?'),
                          create=False)
        with self.assertRaisesRegex(QueueError, '--create-schema'):
            store.status()


class LeaseTests(StoreTestBase):

    def test_a_killed_holders_claim_is_taken_over_at_once(self):
        self.queue()
        child = self.spawn(HOLDER, self.url, 600)
        self.assertEqual(child.stdout.readline(), b'claimed\n')
        self.store.acquire()
        [entry] = self.store.due().entries
        self.assertIsNone(self.store.claim(entry))
        self.assertEqual(self.store.status().counts['sending'], 1)
        killed = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        held = None
        while held is None and time.monotonic() - killed < 5:
            held = self.store.claim(entry)
            time.sleep(0.01 if held is None else 0)
        self.assertIsNotNone(held, 'not taken over within 5 s')
        # Well before the lease of 600 s would expire.
        self.assertLess(time.monotonic() - killed, 5)
        self.assertEqual(held.retry.attempts, 0)
        held.complete()
        self.assertEqual(self.rows(), [])

    def test_a_paused_holders_claim_waits_for_its_lease(self):
        self.queue()
        child = self.spawn(HOLDER, self.url, 2)
        self.assertEqual(child.stdout.readline(), b'claimed\n')
        os.kill(child.pid, signal.SIGSTOP)  # alive, session open
        paused = time.monotonic()
        self.store.acquire()
        [entry] = self.store.due().entries
        held = None
        while held is None and time.monotonic() - paused < 10:
            held = self.store.claim(entry)
            time.sleep(0.05 if held is None else 0)
        self.assertIsNotNone(held)
        # Not before its lease of 2 s ran out (its keeper is paused too).
        self.assertGreater(time.monotonic() - paused, 1.5)
        held.complete()

    def test_leases_are_renewed_while_held(self):
        store = self.open(lease_timeout=1.0, lease_renew=0.1)
        self.queue(store)
        held = self.claim(store)
        other = self.open()
        other.acquire()
        time.sleep(2.0)  # longer than the lease
        [entry] = other.due().entries
        self.assertIsNone(other.claim(entry))
        self.assertTrue(store.may_send())
        held.complete()

    def test_a_stale_claim_changes_nothing(self):
        from zope.sendmail.stores.retrystate import RetryState
        store = self.open(lease_timeout=0.3, lease_renew=0.25)
        self.queue(store, to=('bob@example.com', 'cy@example.com'))
        stale = self.claim(store)
        stale.read()
        # Its keeper stops renewing (as if paused) and the lease runs out.
        store._keeper._stopping.set()
        time.sleep(0.5)
        fresh = self.claim(self.open())
        for change in (stale.complete,
                       lambda: stale.defer(RetryState(0, 1, 1, 2, 'x'),
                                           ['cy@example.com']),
                       lambda: stale.reject('no')):
            stale._done = False
            change()
        self.assertIn('the claim was lost', self.log.records[-1].msg)
        # The row is the fresh claim's still: neither sent nor changed.
        [(toaddrs, rejected, attempts)] = self.rows(
            'toaddrs, rejected_at, attempts')
        self.assertEqual((toaddrs, rejected, attempts),
                         (['bob@example.com', 'cy@example.com'], None, 0))
        fresh.read()
        fresh.complete()
        self.assertEqual(self.rows(), [])

    def test_may_send_is_false_while_leases_cannot_be_renewed(self):
        store = self.open(lease_timeout=3, lease_renew=0.1)
        self.queue(store)
        held = self.claim(store)
        self.assertTrue(store.may_send())
        # The holder's session ends (as when the server drops it).
        holder = store._keeper.holder
        self.layer.psql(
            'SELECT pg_terminate_backend(pid) FROM pg_locks WHERE'
            " locktype = 'advisory' AND objsubid = 1 AND objid = %s",
            (holder & 0xffffffff,))
        # The keeper takes a new holder id, and the lease with it.
        self.assertTrue(wait_until(
            lambda: store._keeper.holder not in (None, holder), 5))
        self.assertTrue(wait_until(store.may_send, 5))
        self.assertTrue(wait_until(lambda: self.rows('lease_holder') == [
            (store._keeper.holder,)], 5))
        held.complete()
        self.assertEqual(self.rows(), [])

    def test_housekeeping_clears_the_claims_of_the_dead(self):
        self.queue(n=2)
        child = self.spawn(HOLDER, self.url, 600)
        self.assertEqual(child.stdout.readline(), b'claimed\n')
        held = self.claim(index=1)  # the other one, by a live holder
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        self.assertTrue(wait_until(
            lambda: self.store.status().counts['sending'] == 1, 5))
        self.store.housekeeping()
        self.assertEqual(
            [row[0] is None for row in self.rows('lease_token')],
            [True, False])
        self.assertIn('cleared the claims of 1 message',
                      self.log.records[-1].getMessage())
        held.complete()

    def test_a_claim_after_a_restart_is_held(self):
        # The server restarted: the holder's session, and its lock, are
        # gone, though its connection object is still there.  A claim
        # made under the old holder id would be nobody's: any processor
        # could take it at once, and send the message a second time.
        first = self.open(lease_renew=30)  # no renewal meanwhile
        self.queue(first)
        first.acquire()
        self.layer.restart()
        [entry] = first.due().entries
        held = first.claim(entry)
        self.assertIsNotNone(held)
        other = self.open()
        other.acquire()
        [entry] = other.due().entries
        self.assertIsNone(other.claim(entry))
        held.complete()
        self.assertEqual(self.rows(), [])

    def test_no_claim_without_the_holders_lock(self):
        # However the holder's lock came to be lost (the check of its
        # connection raced a restart), nothing is claimed without it.
        self.queue()
        self.store.acquire()
        keeper = self.store._keeper
        keeper._conn.execute('SELECT pg_advisory_unlock(%s)',
                             (keeper.holder,))
        [entry] = self.store.due().entries
        self.assertIsNone(self.store.claim(entry))
        self.assertEqual(self.rows('lease_token'), [(None,)])


class HostileRowTests(StoreTestBase):
    """Rows written by hand: each is set aside unread, named, never
    quoted; the listing shows what is wrong."""

    def read(self):
        from zope.sendmail.interfaces import UnreadableMessageError
        held = self.claim()
        with self.assertRaises(UnreadableMessageError) as caught:
            held.read()
        held.reject(str(caught.exception))
        return str(caught.exception), caught.exception.what

    def test_nulls(self):
        cases = [
            ({'fromaddr': None, 'toaddrs': ['b@x'], 'message': b'x'},
             'no sender'),
            ({'fromaddr': 'a@x', 'toaddrs': None, 'message': b'x'},
             'no recipients'),
            ({'fromaddr': 'a@x', 'toaddrs': [], 'message': b'x'},
             'no recipients'),
            ({'fromaddr': 'a@x', 'toaddrs': ['b@x', None], 'message': b'x'},
             'recipient 2 is no text'),
            ({'fromaddr': 'a@x', 'toaddrs': ['b@x'], 'message': None},
             'no message'),
        ]
        for columns, problem in cases:
            row_id = self.insert(**columns)
            reason, what = self.read()
            self.assertEqual(reason,
                             f'unreadable queue row pg-{row_id}: {problem}')
            self.assertEqual(what, f'unreadable queue row'
                             f' {self.store.name}#{row_id}')
            [listed] = [e for e in self.store.entries()
                        if e.key == row_id]
            self.assertEqual((listed.state, listed.problem),
                             ('rejected', problem))

    def test_control_characters_and_sizes(self):
        cases = [
            ({'fromaddr': 'a@x\r\nRCPT TO:<c@y>', 'toaddrs': ['b@x']},
             'its sender holds control characters'),
            ({'fromaddr': 'a@x', 'toaddrs': ['b@x', 'c@y\n']},
             'recipient 2 holds control characters'),
            ({'fromaddr': 'a@x', 'toaddrs': ['']}, 'recipient 1 is empty'),
            ({'fromaddr': 'x' * 5000, 'toaddrs': ['b@x']},
             'its sender is longer than 2000 characters'),
        ]
        for columns, problem in cases:
            self.insert(message=b'SECRET', **columns)
            reason, what = self.read()
            self.assertTrue(reason.endswith(problem), reason)
            self.assertNotIn('SECRET', reason)
            self.assertNotIn('RCPT', reason)

    def test_a_huge_message_is_not_read(self):
        store = self.open(max_message_size=1000)
        self.insert(fromaddr='a@x', toaddrs=['b@x'], message=b'x' * 1001)
        held = self.claim(store)
        from zope.sendmail.interfaces import UnreadableMessageError
        with self.assertRaisesRegex(UnreadableMessageError,
                                    'a message of 1001 bytes'):
            held.read()

    def test_a_nested_array_of_recipients(self):
        self.layer.psql(
            f"INSERT INTO {TABLE} (queue, fromaddr, toaddrs, message)"
            f" VALUES (%s, 'a@x', '{{{{b@x,c@x}},{{d@x,e@x}}}}', 'x')",
            (self.store.queue,))
        reason, what = self.read()
        self.assertTrue(reason.endswith('recipient 1 is no text'), reason)

    def test_odd_bookkeeping_is_made_harmless(self):
        self.insert(fromaddr='a@x', toaddrs=['b@x'], message=b'M',
                    attempts=-5, last_error='x\n' * 5000)
        held = self.claim()
        self.assertEqual(held.retry.attempts, 0)
        self.assertLessEqual(len(held.retry.last_error), 2000)
        self.assertEqual(held.read()[1], ('b@x',))
        self.assertIsNone(held.message_id)

    def test_a_row_without_message_id_is_listed_by_its_header(self):
        self.insert(fromaddr='a@x', toaddrs=['b@x'],
                    message=b'Subject: x\r\nMessage-Id: <h@x>\r\n\r\nbody')
        [listed] = self.store.entries()
        self.assertEqual((listed.message_id, listed.problem),
                         ('h@x', None))

    def test_many_recipients_are_listed_bounded(self):
        self.insert(fromaddr='a@x', message=b'M',
                    toaddrs=[f'r{n}@x' for n in range(500)])
        [listed] = self.store.entries()
        self.assertEqual(len(listed.toaddrs), 51)
        self.assertEqual(listed.toaddrs[-1], '... 450 more')


class VoteTests(StoreTestBase):

    def test_the_database_down_at_the_vote_fails_it(self):
        from zope.sendmail.interfaces import QueueError
        self.queue()  # the schema is there, a connection pooled
        item = self.store.add('x@x', 'a@x', ['b@x'], b'M')
        self.layer.stop()
        try:
            with self.assertRaisesRegex(QueueError, 'cannot queue 1'):
                self.store.vote([item])
        finally:
            self.layer.start()
        self.store.discard([item])
        self.assertEqual(len(self.rows()), 1)

    def test_a_pooled_connection_survives_a_restart(self):
        self.queue()
        self.layer.restart()
        self.queue()  # the idle connection was dead: a new one
        self.assertEqual(len(self.rows()), 2)
        self.assertEqual(len(self.store.due().entries), 2)

    def test_several_pooled_connections_survive_a_restart(self):
        # Several idle connections, all dead after the restart: the
        # second try is on a new connection, not on another dead one.
        self.queue()
        pool = self.store.pool
        barrier = threading.Barrier(3)

        def busy(conn):
            barrier.wait(10)  # three connections in use at once
            return conn.execute('SELECT 1').fetchone()
        threads = [threading.Thread(target=pool.transaction, args=(busy,))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        self.assertGreaterEqual(sum(map(len, pool._idle.values())), 3)
        self.layer.restart()
        self.assertEqual(len(self.store.due().entries), 1)
        self.queue()
        self.assertEqual(len(self.rows()), 2)


class DatabaseAwayTests(StoreTestBase):

    def test_a_processor_waits_out_a_restart(self):
        self.queue(n=2)
        self.store.acquire()
        self.assertEqual(len(self.store.due().entries), 2)
        self.layer.stop()
        try:
            self.assertEqual(self.store.due().entries, [])
            entry = type('E', (), {'row_id': 1, 'key': (1, 0),
                                   'location': 'x'})()
            self.assertIsNone(self.store.claim(entry))
            self.store.housekeeping()  # says why not, never raises
        finally:
            self.layer.start()
        self.assertTrue(wait_until(
            lambda: len(self.store.due().entries) == 2, 10))
        self.assertTrue(wait_until(self.store.may_send, 10))
        held = self.claim()
        held.complete()
        messages = [r.getMessage() for r in self.log.records]
        self.assertEqual(sum('cannot list the due messages' in m
                             for m in messages), 1, messages)

    def test_operators_get_a_queue_error(self):
        from zope.sendmail.interfaces import QueueError
        store = self.open(self.layer.url().replace(
            'host=', 'host=/nonexistent', 1))
        with self.assertRaisesRegex(QueueError, 'cannot read the status'):
            store.status()


class ConnectionSettingsTests(PostgresTestCase):

    def test_connections_bound_every_wait_on_the_network(self):
        from zope.sendmail.stores.postgresql.pool import connect_kwargs
        kwargs = connect_kwargs('postgresql://u@h/db', 10.0)
        self.assertEqual(kwargs['keepalives'], 1)
        # What is sent into a cut network is given up within seconds, not
        # after TCP's retransmissions (about 15 minutes).
        self.assertEqual(kwargs['tcp_user_timeout'], 15000)
        # The URL's own settings win.
        kwargs = connect_kwargs('postgresql://u@h/db?tcp_user_timeout=0',
                                10.0)
        self.assertNotIn('tcp_user_timeout', kwargs)


class NoPsycopgTests(unittest.TestCase):

    def test_opening_says_which_extra_to_install(self):
        # A child where psycopg cannot be imported.
        code = ('import sys\n'
                'sys.modules["psycopg"] = None\n'
                'from zope.sendmail.interfaces import QueueError\n'
                'from zope.sendmail.stores.postgresql import'
                ' open_postgres_store\n'
                'try:\n'
                '    open_postgres_store("postgresql:///db")\n'
                'except QueueError as e:\n'
                '    print(e)\n')
        out = subprocess.run([sys.executable, '-c', code], env=child_env(),
                             capture_output=True, timeout=60, check=True)
        self.assertEqual(out.stdout.decode(),
                         "a PostgreSQL queue needs psycopg: pip install"
                         " 'zope.sendmail[postgresql]'\n")


class ThreadsTests(StoreTestBase):

    def test_close_stops_every_thread(self):
        before = set(threading.enumerate())
        store = self.open()
        self.queue(store)
        store.acquire()
        waiter = store.waiter()
        held = self.claim(store)
        held.release()
        self.assertGreater(len(set(threading.enumerate()) - before), 1)
        store.close(5)
        waiter.close()
        self.assertEqual(set(threading.enumerate()) - before, set())
        store.close(5)  # harmless twice
        self.assertTrue(store.acquire())  # and usable again
        store.close(5)


class OutcomeTests(StoreTestBase):

    def kinds(self, **options):
        """The session kinds (durable or not) of what a claim, a read and
        a completion ran, for a store opened with *options*."""
        store = self.open(**options)
        self.queue(store)
        store.acquire()
        [entry] = store.due().entries
        kinds = []
        run = store.pool.run
        store.pool.run = lambda *args, **kw: (
            kinds.append(kw.get('durable')), run(*args, **kw))[1]
        held = store.claim(entry)
        held.read()
        held.complete()
        self.assertTrue(store.completions.flush(10))
        return kinds

    def test_a_claim_does_not_wait_for_the_disk_an_outcome_does(self):
        self.assertEqual(self.kinds(), [False, True])

    def test_outcomes_that_do_not_wait(self):
        self.assertEqual(self.kinds(durable_outcomes=False), [False, False])


class PoolTests(StoreTestBase):

    def test_votes_are_durable_whatever_the_connection_did_before(self):
        pool = self.store.pool
        show = 'SHOW synchronous_commit'
        self.assertEqual(pool.run(show, fetch='one', durable=False),
                         ('off',))
        self.assertEqual(pool.run(show, fetch='one', durable=None),
                         ('off',))  # the same connection, as it was
        self.assertEqual(pool.transaction(
            lambda conn: conn.execute(show).fetchone()), ('on',))
        # A new connection for votes; each kind kept for its own use.
        self.assertEqual(pool.run(show, fetch='one', durable=False),
                         ('off',))
        self.assertEqual(pool.run(show, fetch='one', durable=True),
                         ('on',))
        self.assertEqual({k: len(v) for k, v in pool._idle.items()},
                         {True: 1, False: 1})

    def test_a_connection_dead_while_idle_is_replaced(self):
        pool = self.store.pool
        pool.run('SELECT 1')
        self.layer.psql('SELECT pg_terminate_backend(pid) FROM'
                        " pg_stat_activity WHERE application_name ="
                        " 'zope.sendmail'")
        self.assertEqual(pool.run('SELECT 2', fetch='one'), (2,))
        self.assertEqual(pool.run('SHOW synchronous_commit', fetch='one',
                                  durable=False), ('off',))


class DueListingTests(StoreTestBase):

    def test_a_pass_lists_from_the_index_not_the_whole_queue(self):
        # A processor lists the due messages at every pass: with a backlog
        # of thousands, the listing reads the first of them (and the next
        # deferred one) from the (queue, due_at, id) index, not every row.
        from zope.sendmail.stores.postgresql import sql
        self.store.status()  # the schema
        self.layer.psql(
            f"INSERT INTO {TABLE} (queue, message_id, fromaddr, toaddrs,"
            f" message, due_at)"
            f" SELECT %s, 'm' || n, 'a@x', ARRAY['b@x'], 'x'::bytea,"
            f" clock_timestamp() + (n %% 2) * interval '1 hour'"
            f" FROM generate_series(1, 20000) AS n", (self.store.queue,))
        self.addCleanup(self.layer.psql, f'DELETE FROM {TABLE} WHERE queue'
                        f' = %s', (self.store.queue,))
        self.layer.psql(f'ANALYZE {TABLE}')
        plan = '\n'.join(row[0] for row in self.layer.psql(
            'EXPLAIN ' + sql.DUE, {'queue': self.store.queue, 'limit': 801}))
        # Both scans bounded by the time, not filtered by it row by row.
        self.assertNotIn('Seq Scan', plan)
        self.assertEqual(len(re.findall(r'Index Cond: .*due_at [<>]',
                                        plan)), 2, plan)
        self.assertNotIn('Filter', plan)
        due = self.store.due(800)
        self.assertEqual((len(due.entries), due.more), (800, True))
        self.assertGreater(due.next_due, self.store.now() + 3000)


class ClaimManyTests(StoreTestBase):

    def test_claims_look_rows_up_by_their_key(self):
        # A connection claims ten messages at once; each row is found by
        # its primary key, even with statistics that know nothing of the
        # queue (just filled): never by walking the queue's due index.
        import uuid

        from zope.sendmail.stores.postgresql import sql
        ids = self.many_rows(20000)[:10]
        plan = '\n'.join(row[0] for row in self.layer.psql(
            'EXPLAIN ' + sql.CLAIM, {
                'ids': ids, 'tokens': [uuid.uuid4() for _ in ids],
                'queue': self.store.queue, 'holder': 1, 'lease': 60.0,
                'max_text': 100, 'max_size': 1000, 'max_inline': 1000}))
        self.assertNotIn('Seq Scan', plan)
        self.assertNotIn(f'{TABLE}_due', plan)
        self.assertIn(f'{TABLE}_pkey', plan)

    def test_a_message_left_behind_is_read_while_the_claim_holds(self):
        from zope.sendmail.stores.postgresql.store import CLAIM_AHEAD_INLINE
        big = b'Message-Id: <big@x>\r\n\r\n' + b'x' * CLAIM_AHEAD_INLINE
        small = b'Message-Id: <small@x>\r\n\r\nbody\r\n'
        items = [self.store.add('big@x', 'ann@example.com', ['b@x'], big),
                 self.store.add('small@x', 'ann@example.com', ['b@x'], small)]
        self.store.vote(items)
        self.store.acquire()
        entries = self.store.due().entries
        claims = self.store.claim_many(entries)
        for held in claims:
            self.addCleanup(held.release)
        # Its claim taken away before it was read (its lease ran out and
        # another processor took it): nothing to read; the other is whole.
        self.layer.psql(f'UPDATE {TABLE} SET lease_token = NULL WHERE'
                        f' message_id = %s', ('big@x',))
        self.assertRaises(LookupError, claims[0].read)
        self.assertEqual(bytes(claims[1].read()[2]), small)
        # Claimed again (with the other, still held): read whole.
        [held, none] = self.store.claim_many(entries)
        self.addCleanup(held.release)
        self.assertIsNone(none)
        self.assertEqual(bytes(held.read()[2]), big)
        self.assertEqual(held.message_id, 'big@x')

    def test_one_message_twice_is_claimed_once(self):
        self.queue()
        self.store.acquire()
        [entry] = self.store.due().entries
        held, again = self.store.claim_many([entry, entry])
        self.addCleanup(held.release)
        self.assertIsNone(again)
        held.complete()
        self.assertEqual(self.rows(), [])
