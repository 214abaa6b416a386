"""The PostgreSQL store's tests' base: `StoreTestBase`, a queue of the
test's own on the test cluster (`PostgresLayer`), its store, and what
lies in its table."""
import signal
import subprocess
import sys

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.postgres import PostgresTestCase


#: The queue's table (`zope.sendmail.stores.postgresql.sql.TABLE`).
TABLE = 'zope_sendmail_queue'


class StoreTestBase(PostgresTestCase):

    def setUp(self):
        super().setUp()
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.url = self.layer.url()
        self.store = self.open()

    def open(self, url=None, **options):
        from zope.sendmail.stores.postgresql import open_postgres_store
        store = open_postgres_store(url or self.url, **options)
        self.addCleanup(store.close, 10)
        self.__dict__.setdefault('opened', []).append(store)
        return store

    def queue(self, store=None, to=('bob@example.com',), n=1):
        store = store or self.store
        items = [store.add(f'm{i}@x', 'ann@example.com', list(to),
                           b'Message-Id: <m%d@x>\r\n\r\nbody\r\n' % i)
                 for i in range(n)]
        store.vote(items)
        store.finish(items)
        return items

    def claim(self, store=None, index=0):
        store = store or self.store
        store.acquire()
        entry = store.due().entries[index]
        held = store.claim(entry)
        self.assertIsNotNone(held)
        self.addCleanup(held.release)
        return held

    def rows(self, columns='id'):
        """The rows of the queue, once the messages the test's stores sent
        are recorded (see `completions`)."""
        for store in self.opened:
            self.assertTrue(store.completions.flush(10))
        return self.layer.psql(
            f'SELECT {columns} FROM {TABLE} WHERE queue = %s ORDER BY id',
            (self.store.queue,))

    def many_rows(self, count):
        """*count* small rows written at once (removed after the test), the
        table's statistics not told of them; their ids."""
        self.store.status()  # the schema
        self.layer.psql(
            f"INSERT INTO {TABLE} (queue, message_id, fromaddr, toaddrs,"
            f" message) SELECT %s, 'm' || n, 'a@x', ARRAY['b@x'],"
            f" 'x'::bytea FROM generate_series(1, %s) AS n",
            (self.store.queue, count))
        self.addCleanup(self.layer.psql, f'DELETE FROM {TABLE} WHERE queue'
                        f' = %s', (self.store.queue,))
        return [row_id for (row_id,) in self.rows()]

    def insert(self, **columns):
        """A row written by hand (as anyone with access could)."""
        columns.setdefault('queue', self.store.queue)
        names = ', '.join(columns)
        marks = ', '.join(['%s'] * len(columns))
        [(row_id,)] = self.layer.psql(
            f'INSERT INTO {TABLE} ({names}) VALUES ({marks}) RETURNING id',
            tuple(columns.values()))
        return row_id

    def spawn(self, code, *args):
        child = subprocess.Popen(
            [sys.executable, '-c', code, *map(str, args)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=child_env())

        def reap():
            if child.poll() is None:
                child.send_signal(signal.SIGCONT)
                child.kill()
            child.wait(10)
            child.stdout.close()
        self.addCleanup(reap)
        return child
