"""Faults of a PostgreSQL queue on one host: processors (``zope-sendmail
--daemon`` processes) SIGKILLed mid-batch, the server crashing and
restarting during a drain, the database down when a transaction commits,
and a lock held by another session while a processor is stopped.  Each
test prints its figures (messages, faults, duplicates, lost, times).
"""
import random
import signal
import sys
import time

import transaction

from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.pgfaults import TABLE
from zope.sendmail.tests.support.pgfaults import PostgresProcessesTestBase
from zope.sendmail.tests.support.processes import message_id


class KilledProcessorTests(PostgresProcessesTestBase):

    KILLS = 6
    #: Long: a takeover must never wait for a lease to run out.
    LEASE = 60

    def test_sigkilled_processors_lose_nothing(self):
        seed = random.randrange(2 ** 32)
        rng = random.Random(seed)
        queue = self.new_queue()
        ids = self.fill(queue, 600)
        rows = self.message_ids(queue)
        # Every reply comes 10 ms late: a kill lands while messages are
        # being sent.
        self.server.delay = 0.01
        options = ('--interval', 5, '--lease-timeout', self.LEASE)
        survivor = self.daemon(queue, 'survivor', '--connections', 1,
                               *options)
        in_flight, takeovers = [], []
        for k in range(self.KILLS):
            if self.left(queue) < 60:
                break  # leave the survivor something to take over
            name = f'victim{k}'
            victim = self.daemon(queue, name, '--connections', 4, *options)
            self.assertTrue(wait_until(
                lambda: self.leased(queue, self.holders(name))
                or victim.poll() is not None, 30), 'the victim claims nothing')
            self.assertIsNone(victim.poll(), self.stderr(victim))
            time.sleep(rng.uniform(0.05, 0.5))
            # Frozen first, so that what it holds can be read exactly: a
            # live holder's claims are nobody else's, and it changes
            # nothing more.  (Killed at once, the claims it held might be
            # taken over before they are read.)
            victim.send_signal(signal.SIGSTOP)
            holders = self.holders(name)
            held = self.leased(queue, holders)
            in_flight.append({rows[row] for row in held})
            victim.kill()
            killed = time.monotonic()
            victim.wait(10)
            taken = wait_until(lambda: not self.leased(queue, holders),
                               self.LEASE / 2, 0.02)
            takeovers.append(time.monotonic() - killed)
            self.assertTrue(taken, f'the claims of {name} were not taken'
                            f' over within {self.LEASE / 2} s')
        kills = len(in_flight)
        self.assertTrue(self.drained(queue, 90),
                        f'{self.left(queue)} left:\n'
                        f'{self.stderr(survivor)[-3000:]}')
        self.assertEqual(self.terminate(survivor), 0, self.stderr(survivor))
        duplicates = self.check_sent_once(ids, in_flight)
        held = sum(len(s) for s in in_flight)
        print(f'\n{self.id()}: {len(ids)} messages, {kills} SIGKILLs (seed'
              f' {seed}) holding {held} claim(s); taken over in'
              f' {min(takeovers):.2f}-{max(takeovers):.2f} s (lease'
              f' {self.LEASE} s); {duplicates} duplicate(s), 0 lost',
              file=sys.stderr)
        self.assertGreaterEqual(kills, 3)
        self.assertGreater(held, 0, 'no kill landed while a message was'
                           ' claimed')
        self.assertLess(max(takeovers), 15)


class RestartTests(PostgresProcessesTestBase):

    #: Long: mail that goes out promptly was woken by a notification.
    INTERVAL = 30
    #: Seconds before the crash whose sends may be undone by it.
    RECENT = 1.0

    def probe(self, queue, n):
        """Commit one message to *queue*; its Message-Id."""
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.url(queue))
        self.addCleanup(delivery.store.close)
        mid = delivery.send('alice@example.com', ['bob@example.com'],
                            f'Subject: probe {n}\r\n\r\nprobe\r\n'.encode())
        transaction.commit()
        return mid

    def test_a_crash_and_restart_during_a_drain(self):
        queue, probes = self.new_queue(), self.new_queue()
        ids = self.fill(queue, 400)
        rows = self.message_ids(queue)
        self.server.delay = 0.01
        options = ('--connections', 2, '--interval', self.INTERVAL)
        drains = [self.daemon(queue, f'drain{i}', *options) for i in (0, 1)]
        prober = self.daemon(probes, 'probe', *options)
        self.assertTrue(wait_until(
            lambda: len(self.server.messages) >= 100, 60))
        probe_ids = [self.probe(probes, 0)]
        latency_before = self.wait_received(probe_ids[-1], 20)
        self.assertIsNotNone(latency_before, self.stderr(prober))
        # Processors commit their claims without waiting for the server's
        # disk: a crash may undo the last moments of claims, and so send
        # again what went out just before it (or while it was down).
        mark = len(self.server.messages)
        time.sleep(self.RECENT)
        before = self.leased(queue)
        sent_before = len(self.server.messages)
        start = time.monotonic()
        self.layer.restart('immediate')
        down = time.monotonic() - start
        # What went out in the last moments before the crash, and while
        # the server was down (the sends of claims made before it).
        crash_mark = len(self.server.messages)
        # The claims of the crash, left on their rows (nobody holds them).
        after = self.leased(queue)
        claimed = {rows[row] for row in before | after}
        recent = {message_id(m.data)
                  for m in self.server.messages[mark:crash_mark]}
        in_flight = claimed | recent
        probe_ids.append(self.probe(probes, 1))
        latency_restart = self.wait_received(probe_ids[-1], 20)
        self.assertIsNotNone(latency_restart, self.stderr(prober))
        self.assertTrue(self.drained(queue, 90), f'{self.left(queue)} left')
        probe_ids.append(self.probe(probes, 2))
        latency_after = self.wait_received(probe_ids[-1], 20)
        self.assertIsNotNone(latency_after, self.stderr(prober))
        for child in (*drains, prober):
            self.assertEqual(self.terminate(child), 0, self.stderr(child))
        self.assertEqual(self.left(probes), 0)
        duplicates = self.check_sent_once(ids + probe_ids, [in_flight])
        dups = {mid for mid, n in self.received().items() if n > 1}
        print(f'\n{self.id()}: {len(ids)} messages, 1 crash (pg_ctl'
              f' restart -m immediate, {down:.2f} s) after {sent_before}'
              f' sent, {len(claimed)} claimed at the crash and'
              f' {len(recent)} sent in its last {self.RECENT:g} s or while'
              f' it was down;'
              f' {duplicates} duplicate(s) ({len(claimed & dups)} of the'
              f' claimed), 0 lost; commit to relay'
              f' {latency_before * 1000:.0f} ms before, {latency_restart:.2f}'
              f' s right after the restart, {latency_after * 1000:.0f} ms'
              f' after the drain (poll interval {self.INTERVAL} s)',
              file=sys.stderr)
        # Woken by notifications, not by polling.
        self.assertLess(latency_restart, 10)
        self.assertLess(latency_after, 2)


class DownAtCommitTests(PostgresProcessesTestBase):

    def test_the_database_down_at_commit(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.interfaces import QueueError
        figures = []
        for mode in ('fast', 'immediate'):
            queue = self.new_queue()
            delivery = QueuedMailDelivery(self.url(queue))
            self.addCleanup(delivery.store.close)
            delivery.send('alice@example.com', ['bob@example.com'],
                          b'Subject: first\r\n\r\nfirst\r\n')  # the schema
            transaction.commit()
            self.assertEqual(self.left(queue), 1)
            self.psql(f'DELETE FROM {TABLE} WHERE queue = %s', (queue,))
            for n in range(3):
                delivery.send('alice@example.com', ['bob@example.com'],
                              f'Subject: {n}\r\n\r\n{n}\r\n'.encode())
            self.layer.stop(mode)
            self.addCleanup(self.start_again)
            start = time.monotonic()
            with self.assertRaises(QueueError) as caught:
                transaction.commit()
            took = time.monotonic() - start
            error = str(caught.exception)
            self.assertIn('cannot queue 3 message(s)', error)
            self.assertIn(queue, error)
            # The transaction manager is usable again once the failed
            # transaction is aborted, as after any failed commit.
            transaction.abort()
            transaction.begin()
            transaction.commit()
            self.layer.start()
            self.assertEqual(self.left(queue), 0)
            # Nothing is sent: a processor finds nothing.
            once = self.spawn(['-m', 'zope.sendmail.console',
                               self.process_url(queue, 'once'),
                               '--hostname', self.smtp_host,
                               '--port', str(self.server.port), '--no-tls'])
            out, _ = once.communicate(timeout=60)
            self.assertEqual(once.returncode, 0, self.stderr(once))
            self.assertEqual(self.server.messages, [])
            # And the next transaction is queued and sent.
            delivery.send('alice@example.com', ['bob@example.com'],
                          b'Subject: after\r\n\r\nafter\r\n')
            transaction.commit()
            self.assertEqual(self.left(queue), 1)
            figures.append(f'{mode} stop: the commit failed in {took:.2f} s')
            self.psql(f'DELETE FROM {TABLE} WHERE queue = %s', (queue,))
        print(f'\n{self.id()}: 3 messages, database down at commit;'
              f' {"; ".join(figures)}; 0 queued, 0 sent',
              file=sys.stderr)

    def start_again(self):
        if not self.layer.cluster.running:
            self.layer.start()


class LockedStopTests(PostgresProcessesTestBase):

    STOP_TIMEOUT = 2.0

    def test_stop_is_bounded_while_a_lock_blocks_the_processor(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        from zope.sendmail.smtp.mailer import SMTPMailer
        queue = self.new_queue()
        ids = self.fill(queue, 20)
        # Another session holds the queue's table: every statement of the
        # processor on it waits.
        conn = self.layer.cluster.connect()
        self.addCleanup(conn.close)
        conn.execute('BEGIN')
        conn.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
        locked = [True]

        def unlock():
            if locked:
                conn.execute('ROLLBACK')
                del locked[:]
        self.addCleanup(unlock)
        thread = QueueProcessorThread(
            interval=1, queuePath=self.process_url(queue, 'locked'),
            mailer=SMTPMailer(self.server.host, self.server.port,
                              no_tls=True, timeout=10))
        thread.start()
        self.addCleanup(thread.stop, 30)
        self.assertTrue(wait_until(lambda: self.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name"
            " = 'locked' AND wait_event_type = 'Lock'")[0][0] > 0, 20),
            'the processor is not waiting for the lock')
        start = time.monotonic()
        stopped = thread.stop(self.STOP_TIMEOUT)
        took = time.monotonic() - start
        self.assertLess(took, self.STOP_TIMEOUT + 1.5)
        # Once the lock is gone, the pass ends and the thread with it.
        unlock()
        start = time.monotonic()
        thread.join(60)
        self.assertFalse(thread.is_alive())
        ended = time.monotonic() - start
        self.assertTrue(thread.stop(5))
        # Nothing lost: what was not sent is still queued.
        self.assertEqual(self.left(queue) + len(self.received()), len(ids))
        print(f'\n{self.id()}: a lock held by another session: stop('
              f'{self.STOP_TIMEOUT:g}) returned {stopped} after {took:.2f}'
              f' s; the thread ended {ended:.2f} s after the lock went;'
              f' {len(self.received())} of {len(ids)} messages sent',
              file=sys.stderr)
