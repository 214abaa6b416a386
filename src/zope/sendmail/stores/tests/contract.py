"""The contract suite of `IQueueStore`: what every store must do.

`QueueStoreContract` is a mixin, not a test module: a store's tests
subclass it together with ``unittest.TestCase`` and give `make_store`
(a store on a new, empty queue, removed after the test) and `reopen`
(another store object on the same queue, as another thread, process or
delivery opens it); `child_queue` names the queue for `open_store` in a
child process.  Real queues throughout, real threads and processes, the
store's own clock: nothing is faked, so every store passes the same
tests.  Waits are bounded.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from zope.interface.verify import verifyObject


# A process holding the claim of the first due message until killed.
CLAIM_HOLDER = '''
import sys, time
from zope.sendmail.stores import open_store
store = open_store(sys.argv[1])
entries = store.due().entries
held = store.claim(entries[0]) if entries else None
print('claimed' if held is not None else 'busy', flush=True)
time.sleep(120)
'''


class Policy:
    """A retry policy of fixed delay (`RetryPolicy`'s ``delay``)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def delay(self, attempts):
        return self.seconds


class QueueStoreContract:
    """Tests of `IQueueStore`; see the module."""

    #: What `open_store` opens in a child process; None skips those tests.
    child_queue = None

    def make_store(self):
        raise NotImplementedError

    def reopen(self, store):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close, 10)

    # Helpers

    def queue(self, *recipients, store=None, sender='ann@example.com'):
        """Commit one message for each recipient list, each in a batch of
        its own, in order; return their message ids."""
        store = store or self.store
        ids = []
        for to in recipients or (['bob@example.com'],):
            message_id = f'm{len(ids)}.{time.time_ns()}@example.com'
            item = store.add(message_id, sender, list(to), self.message(
                message_id))
            store.vote([item])
            store.finish([item])
            ids.append(message_id)
            time.sleep(0.002)  # oldest first: distinct times of queueing
        return ids

    @staticmethod
    def message(message_id, body=b'body'):
        return (b'Message-Id: <%s>\r\nSubject: test\r\n\r\n%s\r\n'
                % (message_id.encode(), body))

    def due(self, store=None, limit=None):
        return (store or self.store).due(limit)

    def ids(self, store=None):
        """The Message-Ids of the due messages, in order (each claimed,
        read and released)."""
        store = store or self.store
        result = []
        for entry in store.due().entries:
            held = store.claim(entry)
            self.assertIsNotNone(held, entry)
            try:
                held.read()
                result.append(held.message_id)
            finally:
                held.release()
        return result

    def claim_first(self, store=None):
        store = store or self.store
        [entry] = store.due().entries[:1]
        held = store.claim(entry)
        self.assertIsNotNone(held)
        self.addCleanup(held.release)
        return held

    def wait_due(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.due().entries) < count:
            self.assertLess(time.monotonic(), deadline,
                            f'fewer than {count} messages due in time')
            time.sleep(0.02)

    # The objects handed out

    def test_interfaces(self):
        from zope.sendmail.interfaces import IClaimedMessage
        from zope.sendmail.interfaces import IDueMessages
        from zope.sendmail.interfaces import IListedMessage
        from zope.sendmail.interfaces import IQueueEntry
        from zope.sendmail.interfaces import IQueueStatus
        from zope.sendmail.interfaces import IQueueStore
        from zope.sendmail.interfaces import IQueueWaiter
        from zope.sendmail.interfaces import IRetryState
        self.assertTrue(verifyObject(IQueueStore, self.store))
        self.queue()
        due = self.due()
        self.assertTrue(verifyObject(IDueMessages, due))
        [entry] = due.entries
        self.assertTrue(verifyObject(IQueueEntry, entry))
        held = self.store.claim(entry)
        self.assertTrue(verifyObject(IClaimedMessage, held))
        self.assertTrue(verifyObject(IRetryState, held.retry))
        held.release()
        waiter = self.store.waiter()
        self.assertTrue(verifyObject(IQueueWaiter, waiter))
        waiter.close()
        self.assertTrue(verifyObject(IQueueStatus, self.store.status()))
        [listed] = self.store.entries()
        self.assertTrue(verifyObject(IListedMessage, listed))

    def test_now_is_a_clock_in_seconds_since_the_epoch(self):
        self.assertLess(abs(self.store.now() - time.time()), 60)
        self.assertIsInstance(self.store.name, str)
        self.assertEqual(self.reopen(self.store).key, self.store.key)

    # A delivery's batch

    def test_committed_messages_are_due_in_order(self):
        ids = self.queue(['bob@example.com'], ['cy@example.com', 'di@x.org'])
        self.assertEqual(self.ids(), ids)
        [first, second] = self.due().entries
        held = self.store.claim(second)
        try:
            fromaddr, toaddrs, message = held.read()
            self.assertEqual(fromaddr, 'ann@example.com')
            self.assertEqual(list(toaddrs), ['cy@example.com', 'di@x.org'])
            self.assertIsInstance(message, memoryview)
            self.assertEqual(bytes(message), self.message(ids[1]))
        finally:
            held.release()

    def test_nothing_is_due_before_the_vote_and_the_finish(self):
        item = self.store.add('m@x', 'ann@example.com', ['bob@example.com'],
                              self.message('m@x'))
        self.assertEqual(self.due().entries, [])
        self.store.vote([item])
        self.store.finish([item])
        self.assertEqual(self.ids(), ['m@x'])

    def test_discarded_messages_are_never_due(self):
        store = self.store
        kept, dropped, voted = [
            store.add(f'{n}@x', 'ann@example.com', ['bob@example.com'],
                      self.message(f'{n}@x')) for n in 'kdv']
        store.discard([dropped])  # a savepoint rolled back
        store.discard([dropped])  # harmless twice
        store.vote([voted])
        store.discard([voted])  # the transaction aborted after the vote
        store.vote([kept])
        store.finish([kept])
        self.assertEqual(self.ids(), ['k@x'])
        self.assertEqual(store.status().counts['queued'], 1)

    def test_a_big_message_is_read_whole(self):
        body = b'x' * 75 + b'\r\n'
        body *= 20000  # 1.5 MB
        item = self.store.add('big@x', 'ann@example.com', ['bob@x.org'],
                              self.message('big@x', body))
        self.store.vote([item])
        self.store.finish([item])
        held = self.claim_first()
        self.assertEqual(bytes(held.read()[2]), self.message('big@x', body))

    # Due messages

    def test_due_is_bounded_oldest_first(self):
        ids = self.queue(*[['bob@example.com']] * 5)
        due = self.due(limit=2)
        self.assertEqual(len(due.entries), 2)
        self.assertTrue(due.more)
        self.assertFalse(self.due(limit=5).more)
        self.assertEqual(self.ids(), ids)
        self.assertIsNone(self.due().next_due)

    def test_next_due_and_deferred_messages(self):
        self.queue(['bob@example.com'], ['cy@example.com'])
        held = self.claim_first()
        held.read()
        retry = held.retry
        start = self.store.now()
        retry.failed('451 later', Policy(60), start)
        held.defer(retry)
        due = self.due()
        self.assertEqual(len(due.entries), 1)
        self.assertFalse(due.more)
        self.assertAlmostEqual(due.next_due, start + 60, delta=1)

    def test_present(self):
        self.queue(['bob@example.com'], ['cy@example.com'])
        keys = [e.key for e in self.due().entries]
        self.assertEqual(self.store.present(keys), set(keys))
        held = self.store.claim(self.due().entries[0])
        held.complete()
        self.assertEqual(self.store.present(keys), set(keys[1:]))

    # Claims

    def test_a_claim_is_exclusive_until_released(self):
        self.queue()
        [entry] = self.due().entries
        held = self.store.claim(entry)
        self.assertIsNotNone(held)
        self.assertIsNone(self.store.claim(entry))
        other = self.reopen(self.store)
        [again] = other.due().entries
        self.assertIsNone(other.claim(again))
        self.assertIsNone(held.release())
        held.release()  # harmless twice
        held = other.claim(again)
        self.assertIsNotNone(held)
        held.release()

    def test_claim_many(self):
        ids = self.queue(*[['bob@example.com']] * 4)
        self.assertGreaterEqual(self.store.claim_ahead, 1)
        self.assertEqual(self.store.claim_many([]), [])
        entries = self.due().entries
        first = self.store.claim(entries[0])
        # One held already: None in its place, the others claimed, in the
        # order asked.
        claims = self.store.claim_many(entries)
        self.assertEqual(len(claims), 4)
        self.assertIsNone(claims[0])
        read = []
        for held in claims[1:]:
            self.assertEqual(held.key, entries[claims.index(held)].key)
            held.read()
            read.append(held.message_id)
        self.assertEqual(read, ids[1:])
        # Each claim is its own: one completed, one released, one
        # deferred; none of them claimable by another meanwhile.
        other = self.reopen(self.store)
        self.assertEqual(other.claim_many(other.due().entries),
                         [None] * 4)
        claims[1].complete()
        claims[2].release()
        retry = claims[3].retry
        retry.failed('451 later', Policy(3600), self.store.now())
        claims[3].defer(retry)
        first.release()
        self.due()  # what this store answers comes after its completions
        self.assertEqual(self.ids(other), [ids[0], ids[2]])

    def test_claim_many_brings_big_messages_when_read(self):
        # A store may leave a big message to be read when it is sent: what
        # is read is the message, whatever the claims' number.
        big = b'x' * (600 * 1024)
        item = self.store.add('big@example.com', 'ann@example.com',
                              ['bob@example.com'],
                              self.message('big@example.com', big))
        self.store.vote([item])
        self.store.finish([item])
        self.queue()
        claims = self.store.claim_many(self.due().entries)
        self.assertNotIn(None, claims)
        for held in claims:
            self.addCleanup(held.release)
        fromaddr, toaddrs, message = claims[0].read()
        self.assertEqual(bytes(message),
                         self.message('big@example.com', big))
        self.assertEqual(claims[0].message_id, 'big@example.com')

    def test_claims_in_threads_each_message_once(self):
        self.queue(*[['bob@example.com']] * 20)
        claimed = []
        start = threading.Barrier(4)

        def work(store):
            start.wait(10)
            for entry in store.due().entries:
                held = store.claim(entry)
                if held is not None:
                    claimed.append((entry.key, held))
        threads = [threading.Thread(target=work,
                                    args=(self.reopen(self.store),))
                   for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        try:
            keys = [key for key, held in claimed]
            self.assertEqual(len(keys), 20)
            self.assertEqual(len(set(keys)), 20)
        finally:
            for key, held in claimed:
                held.release()

    def spawn_holder(self):
        if self.child_queue is None:
            self.skipTest('this store names no queue for a child process')
        from zope.sendmail.tests.support import child_env
        child = subprocess.Popen(
            [sys.executable, '-c', CLAIM_HOLDER, self.child_queue],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=child_env())

        def reap():
            if child.poll() is None:
                child.kill()
            child.wait(10)
            child.stdout.close()
        self.addCleanup(reap)
        return child

    def test_a_claim_in_another_process_and_its_death(self):
        self.queue()
        child = self.spawn_holder()
        self.assertEqual(child.stdout.readline(), b'claimed\n')
        [entry] = self.due().entries
        self.assertIsNone(self.store.claim(entry))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        # Dead: its claim is taken over as soon as the store can tell.
        deadline = time.monotonic() + 30
        held = None
        while held is None:
            self.assertLess(time.monotonic(), deadline,
                            'the dead process\'s claim was not taken over')
            [entry] = self.due().entries
            held = self.store.claim(entry)
            time.sleep(0.05 if held is None else 0)
        self.assertEqual(held.read()[1], ('bob@example.com',))
        held.complete()
        self.assertEqual(self.due().entries, [])

    # What becomes of a claimed message

    def test_complete(self):
        self.queue(['bob@example.com'], ['cy@example.com'])
        held = self.claim_first()
        held.read()
        held.complete()
        held.release()  # harmless after complete
        self.assertEqual(len(self.due().entries), 1)
        self.assertEqual(self.store.status().counts['queued'], 1)

    def test_defer_keeps_the_retry_state_and_the_time(self):
        [message_id] = self.queue()
        held = self.claim_first()
        fresh = held.retry
        self.assertEqual((fresh.attempts, fresh.last_attempt,
                          fresh.last_error), (0, None, ''))
        self.assertAlmostEqual(fresh.queued, self.store.now(), delta=5)
        held.read()
        now = self.store.now()
        fresh.failed('451 4.3.0\n try later', Policy(0.3), now)
        held.defer(fresh)
        self.assertEqual(self.due().entries, [])
        status = self.store.status()
        self.assertEqual((status.counts['deferred'], status.waiting),
                         (1, 1))
        self.assertAlmostEqual(status.next_attempt, now + 0.3, delta=0.01)
        self.wait_due(1)
        held = self.claim_first()
        retry = held.retry
        self.assertEqual((retry.attempts, retry.last_error),
                         (1, '451 4.3.0 try later'))
        self.assertAlmostEqual(retry.queued, fresh.queued, delta=1)
        self.assertAlmostEqual(retry.last_attempt, now, delta=0.01)
        self.assertAlmostEqual(retry.next_attempt, now + 0.3, delta=0.01)
        self.assertEqual(held.read()[:2], ('ann@example.com',
                                           ('bob@example.com',)))
        self.assertEqual(held.message_id, message_id)

    def test_defer_for_the_recipients_left(self):
        [message_id] = self.queue(['bob@example.com', 'cy@example.com',
                                   '"Doe, D" <di@example.com>'])
        held = self.claim_first()
        fromaddr, toaddrs, message = held.read()
        before = bytes(message)
        retry = held.retry
        retry.failed('452 mailbox full', Policy(0.2), self.store.now())
        held.defer(retry, recipients=toaddrs[1:])
        self.wait_due(1)
        held = self.claim_first()
        fromaddr, toaddrs, message = held.read()
        self.assertEqual(list(toaddrs), ['cy@example.com',
                                         '"Doe, D" <di@example.com>'])
        self.assertEqual(bytes(message), before)
        self.assertEqual(held.retry.attempts, 1)

    def test_reject(self):
        [message_id] = self.queue()
        held = self.claim_first()
        held.read()
        self.assertIsInstance(held.rejected_as, str)
        held.reject('550 5.1.1 no such user')
        self.assertEqual(self.due().entries, [])
        status = self.store.status()
        self.assertEqual(status.counts, {'sending': 0, 'queued': 0,
                                         'deferred': 0, 'rejected': 1})
        self.assertIsNone(status.oldest)
        [listed] = self.store.entries()
        self.assertEqual((listed.state, listed.reason, listed.message_id),
                         ('rejected', '550 5.1.1 no such user', message_id))

    def test_release_leaves_the_message_due(self):
        self.queue()
        held = self.claim_first()
        held.read()
        held.release()
        self.assertEqual(len(self.due().entries), 1)

    # Waiting

    def test_a_waiter_is_woken_by_a_commit(self):
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        self.assertFalse(waiter.wait(0.05))
        woken = []
        thread = threading.Thread(target=lambda: woken.append(
            waiter.wait(30)))
        thread.start()
        started = time.monotonic()
        self.queue(store=self.reopen(self.store))  # another delivery's
        thread.join(30)
        self.assertEqual(woken, [True])
        self.assertLess(time.monotonic() - started, 5)

    def test_a_waiter_woken_by_itself_is_woken_once(self):
        # No commit in this test: a store may wake a waiter twice for one
        # commit (in-process at once, and again when the database's
        # notification comes), so a commit's wake-ups cannot be counted.
        waiter = self.store.waiter()
        self.addCleanup(waiter.close)
        waiter.wake()
        self.assertTrue(waiter.wait(30))  # not lost
        self.assertFalse(waiter.wait(0.05))  # and not kept

    def test_a_closed_waiter_is_woken_no_more(self):
        waiter = self.store.waiter()
        waiter.close()
        waiter.close()
        self.queue()
        self.assertFalse(waiter.wait(0.05))

    # A processor's right to work

    def test_a_processor_of_a_local_queue_may_work(self):
        self.assertTrue(self.store.acquire())
        self.assertTrue(self.store.may_send())
        self.assertFalse(self.store.standby_wait(threading.Event()))
        self.store.housekeeping()
        self.store.close()
        self.store.close()
        self.assertTrue(self.store.acquire())

    def test_housekeeping_leaves_the_messages(self):
        self.queue(['bob@example.com'], ['cy@example.com'])
        held = self.claim_first()
        self.store.housekeeping()
        self.assertIsNotNone(held.read())
        held.release()
        self.assertEqual(len(self.due().entries), 2)

    # What an operator sees and does

    def test_status_and_entries(self):
        ids = self.queue(['bob@example.com'], ['cy@example.com'],
                         ['di@example.com'])
        first, second, third = self.due().entries
        held = self.store.claim(second)
        held.read()
        retry = held.retry
        retry.failed('451 busy', Policy(600), self.store.now())
        held.defer(retry)
        held = self.store.claim(third)
        held.read()
        held.reject('550 no')
        status = self.store.status()
        self.assertEqual(status.counts, {'sending': 0, 'queued': 1,
                                         'deferred': 1, 'rejected': 1})
        self.assertEqual(status.waiting, 1)
        self.assertEqual(status.others, 0)
        self.assertAlmostEqual(status.oldest, self.store.now(), delta=60)
        listed = {e.message_id: e for e in self.store.entries()}
        self.assertEqual(sorted(listed), sorted(ids))
        queued, deferred, rejected = (listed[i] for i in ids)
        self.assertEqual((queued.state, queued.fromaddr,
                          list(queued.toaddrs), queued.attempts),
                         ('queued', 'ann@example.com', ['bob@example.com'],
                          0))
        self.assertEqual((deferred.state, deferred.attempts,
                          deferred.last_error), ('deferred', 1, '451 busy'))
        self.assertGreater(deferred.next_attempt, self.store.now() + 500)
        self.assertEqual((rejected.state, rejected.reason),
                         ('rejected', '550 no'))
        self.assertEqual(self.store.others(), [])

    def test_requeue_rejected(self):
        [message_id] = self.queue()
        held = self.claim_first()
        held.read()
        held.reject('550 no')
        [(before, after)] = self.store.requeue_rejected()
        self.assertNotEqual(before, after)
        self.assertEqual(self.ids(), [message_id])
        self.assertEqual(self.store.status().counts['rejected'], 0)
        self.assertEqual(self.store.requeue_rejected(), [])

    def test_purge_rejected(self):
        self.queue(['bob@example.com'], ['cy@example.com'])
        for n in range(2):
            held = self.claim_first()
            held.read()
            held.reject('550 no')
        now = self.store.now()
        self.assertEqual(self.store.purge_rejected(3600, now), [])
        purged = self.store.purge_rejected(1, now + 2)
        self.assertEqual(len(purged), 2)
        for location, when in purged:
            self.assertAlmostEqual(when, now, delta=60)
        self.assertEqual(self.store.status().counts['rejected'], 0)
        self.assertEqual(self.store.entries(), [])
