"""Messages sent, recorded in groups by a thread of the store
(`Completions`), on a real server: groups, the bound on what waits,
flush and close, the database refusing, the statement's plan."""
import threading
import uuid

from zope.interface.verify import verifyObject

from zope.sendmail.tests.support.pgstore import TABLE
from zope.sendmail.tests.support.pgstore import StoreTestBase


class CountingPool:
    """The store's pool, noting the groups deleted through it, and failing
    with *fail* when it is set (a collaborator given to `Completions` as
    the store gives its own)."""

    def __init__(self, pool):
        self.pool = pool
        self.name = pool.name
        self.fail = None
        self.groups = []

    def run(self, statement, params=None, **kw):
        self.groups.append(len(params['ids']))
        if self.fail is not None:
            raise self.fail
        return self.pool.run(statement, params, **kw)


class CompletionsTests(StoreTestBase):

    def setUp(self):
        super().setUp()
        from zope.sendmail.stores.postgresql.completions import Completions
        self.pool = CountingPool(self.store.pool)
        self.discarded = []
        self.completions = Completions(self.pool, self.discarded.append,
                                       name='test')
        self.addCleanup(self.completions.close, 10)

    def claims(self, n):
        self.queue(n=n)
        self.store.acquire()
        claims = self.store.claim_many(self.store.due().entries)
        self.assertNotIn(None, claims)
        return claims

    def test_interface(self):
        from zope.sendmail.interfaces import ICompletions
        self.assertTrue(verifyObject(ICompletions, self.completions))
        self.assertTrue(verifyObject(ICompletions, self.store.completions))

    def test_threads_finishing_together_share_a_statement(self):
        claims = self.claims(40)
        start = threading.Barrier(8)

        def work(mine):
            start.wait(10)
            for held in mine:
                self.completions.complete(held)
        threads = [threading.Thread(target=work, args=(claims[n::8],))
                   for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertTrue(self.completions.flush(10))
        self.assertEqual(self.rows(), [])
        self.assertEqual(sum(self.pool.groups), 40)
        self.assertLess(len(self.pool.groups), 40)
        self.assertEqual(sorted(self.discarded),
                         sorted(held.token for held in claims))

    def test_a_thread_has_one_message_waiting_at_most(self):
        # The next completion of a thread waits for its previous one: one
        # message sent and not recorded besides the one it is sending.
        first, second = self.claims(2)
        self.completions.complete(first)
        self.completions.complete(second)
        self.assertEqual(self.pool.groups[:1], [1])
        self.assertTrue(self.completions.flush(10))
        self.assertEqual(self.pool.groups, [1, 1])

    def test_a_lost_claim_changes_nothing_and_is_said(self):
        [held] = self.claims(1)
        self.layer.psql(f'UPDATE {TABLE} SET lease_token = %s WHERE id = %s',
                        (uuid.uuid4(), held.row_id))
        self.completions.complete(held)
        self.assertTrue(self.completions.flush(10))
        self.assertEqual(len(self.rows()), 1)
        self.assertIn('the claim was lost before it was sent',
                      str(self.log))

    def test_the_database_refusing_is_said_for_each_message(self):
        import psycopg
        self.pool.fail = psycopg.OperationalError('server gone')
        claims = self.claims(2)
        for held in claims:
            self.completions.complete(held)
        self.assertTrue(self.completions.flush(10))
        self.assertEqual(str(self.log).count(
            'cannot record that it was sent (server gone)'), 2)
        self.assertEqual(len(self.rows()), 2)
        # Their leases are no longer renewed: the messages are sent again
        # once they run out.
        self.assertEqual(sorted(self.discarded),
                         sorted(held.token for held in claims))

    def test_closed_it_records_at_once_and_its_thread_is_gone(self):
        first, second = self.claims(2)
        self.completions.complete(first)
        self.assertTrue(self.completions.close(10))
        self.assertFalse(any(t.name == 'zope.sendmail completions of test'
                             for t in threading.enumerate()))
        self.completions.complete(second)  # in this thread, now
        self.assertEqual(self.layer.psql(
            f'SELECT id FROM {TABLE} WHERE queue = %s',
            (self.store.queue,)), [])

    def test_the_store_answers_after_its_completions(self):
        # Through the store: what it says is due or in the queue comes
        # after the messages its claims sent.
        claims = self.claims(3)
        for held in claims:
            held.complete()
        self.assertEqual(self.store.status().counts['sending'], 0)
        self.assertEqual(self.store.due().entries, [])

    def test_rows_are_looked_up_by_their_key(self):
        from zope.sendmail.stores.postgresql import sql
        ids = self.many_rows(20000)[:10]
        plan = '\n'.join(row[0] for row in self.layer.psql(
            'EXPLAIN ' + sql.COMPLETE,
            {'ids': ids, 'tokens': [uuid.uuid4() for _ in ids]}))
        self.assertNotIn('Seq Scan', plan)
        self.assertIn(f'{TABLE}_pkey', plan)
