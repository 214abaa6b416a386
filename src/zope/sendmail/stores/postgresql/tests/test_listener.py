"""Wake-ups by LISTEN/NOTIFY: from another process, across a restart of
the server, and a clean stop."""
import subprocess
import sys
import threading
import time

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresTestCase


# Another process's delivery: one message, committed.
DELIVERY = '''
import sys
from zope.sendmail.stores.postgresql import open_postgres_store
store = open_postgres_store(sys.argv[1])
items = [store.add('x@x', 'a@x', ['b@x'], b'M')]
store.vote(items)
store.finish(items)
'''


class ListenerTests(PostgresTestCase):

    def setUp(self):
        super().setUp()
        from zope.sendmail.stores.postgresql import open_postgres_store
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.url = self.layer.url()
        self.store = open_postgres_store(self.url)
        self.addCleanup(self.store.close, 10)
        self.store.status()  # the schema, before anyone waits

    def deliver_elsewhere(self, url=None):
        subprocess.run([sys.executable, '-c', DELIVERY, url or self.url],
                       env=child_env(), check=True, timeout=60)

    def waiting(self, waiter, timeout=30):
        """Wait on *waiter* in a thread; return what it will say."""
        woken = []
        thread = threading.Thread(target=lambda: woken.append(
            waiter.wait(timeout)))
        thread.start()
        self.addCleanup(thread.join, timeout)
        return thread, woken

    def test_a_commit_in_another_process_wakes_the_waiter(self):
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        thread, woken = self.waiting(waiter)
        started = time.monotonic()
        self.deliver_elsewhere()
        thread.join(30)
        self.assertEqual(woken, [True])
        self.assertLess(time.monotonic() - started, 10)

    def test_another_queues_commit_does_not(self):
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        self.deliver_elsewhere(self.layer.url())
        self.assertFalse(waiter.wait(0.3))

    def test_the_listener_reconnects_after_a_restart(self):
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        listener = self.store._listener
        self.assertTrue(listener.listening.is_set())
        self.layer.restart()  # a crash and a start
        # Listening again (it woke its waiter then: mail committed
        # meanwhile is not left for the next poll).
        self.assertTrue(wait_until(listener.listening.is_set, 15))
        self.assertTrue(waiter.wait(15))
        thread, woken = self.waiting(waiter)
        self.deliver_elsewhere()
        thread.join(30)
        self.assertEqual(woken, [True])
        said = [r.getMessage() for r in self.log.records
                if r.levelname == 'WARNING']
        self.assertLessEqual(len(said), 1, said)

    def test_a_closed_store_stops_listening(self):
        before = set(threading.enumerate())
        waiter = self.store.waiter()
        started = time.monotonic()
        self.store.close(5)
        self.assertLess(time.monotonic() - started, 2)
        self.assertEqual(set(threading.enumerate()) - before, set())
        waiter.close()
        # The server sees the connection go (soon).
        self.assertTrue(wait_until(lambda: self.layer.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE"
            " 'LISTEN%%' AND state = 'idle'") == [(0,)], 5))
