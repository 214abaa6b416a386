"""Queue processors in separate processes sharing one queue.

The processors run as child processes (`processor_main`) against the test
SMTP server of this process; the claims (``.claim-X`` locks and
``.sending-X`` links) must make every message go out once, survive
processors killed mid-send, and respect the claims of live processors in
other processes.
"""
import collections
import os
import random
import re
import signal
import subprocess
import sys
import time


from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.processes import ProcessTestBase


class ConcurrentProcessesTests(ProcessTestBase):

    def test_three_processes_send_every_message_once(self):
        ids = self.fill(500)
        self.assertEqual(len(set(ids)), 500)
        # Slow replies a little, so that the three passes overlap.
        self.server.delay = 0.001
        children = [self.processor('--connections', 8, '--interval', 0.1,
                                   until_empty=True) for _ in range(3)]
        counts = [self.finish(child) for child in children]
        self.assertTrue(wait_until(lambda: self.server.open_connections == 0,
                                   10))
        received = self.received()
        self.assertEqual(sum(received.values()), 500,
                         f'duplicates: {received - collections.Counter(ids)}')
        self.assertEqual(received, collections.Counter(ids))
        # Each process says what it did: together, 500 sent, none failed.
        self.assertEqual(sum(c['sent'] for c in counts), 500, counts)
        for c in counts:
            self.assertEqual(set(c) - {'sent', 'busy', 'vanished'}, set(),
                             counts)
        # They did overlap (each pass finds the others' claims busy).
        self.assertGreaterEqual(len([c for c in counts if c['sent']]), 2,
                                counts)
        messages, dotfiles = self.listing()
        self.assertEqual(messages, [])
        self.assertEqual([n for n in dotfiles
                          if re.match(r'\w+/\.(sending|claim)-', n)], [])
        if dotfiles:
            print(f'\n{self.id()}: dot-files left: {dotfiles}',
                  file=sys.stderr)

    def test_sigterm_stops_a_running_processor(self):
        ids = self.fill(20)
        child = self.processor('--interval', 0.1)
        self.server.wait_for(20, timeout=30)
        self.assertTrue(wait_until(lambda: not self.listing()[0], 10))
        child.send_signal(signal.SIGTERM)
        try:
            self.assertEqual(child.wait(30), 0, self.stderr(child))
        except subprocess.TimeoutExpired:
            self.fail(f'SIGTERM did not stop the processor:\n'
                      f'{self.stderr(child)}')
        self.assertEqual(self.received(), collections.Counter(ids))
        self.assertEqual(self.listing(), ([], []))


class KilledProcessorTests(ProcessTestBase):

    KILLS = 12

    def test_sigkilled_processor_loses_nothing(self):
        seed = random.randrange(2 ** 32)
        rng = random.Random(seed)
        ids = self.fill(500)
        # Every reply comes 5 ms late: a kill almost always lands while a
        # message is being sent.
        self.server.delay = 0.005
        kills, children = 0, []
        deadline = time.monotonic() + 30
        while kills < self.KILLS and time.monotonic() < deadline:
            before = len(self.server.messages)
            child = self.processor('--connections', 1, '--interval', 0.1)
            children.append(child)
            # Let it start sending, then kill it at a random moment.
            started = wait_until(
                lambda: len(self.server.messages) > before
                or child.poll() is not None, 20)
            self.assertTrue(started, 'the processor sent nothing in 20 s')
            self.assertIsNone(child.poll(), self.stderr(child))
            time.sleep(rng.uniform(0.05, 0.3))
            child.kill()
            child.wait(10)
            kills += 1
        self.assertEqual(kills, self.KILLS)
        sent_before_final = len(self.server.messages)
        self.server.delay = 0
        children.append(self.processor(until_empty=True))
        counts = self.finish(children[-1])
        self.assertTrue(wait_until(lambda: self.server.open_connections == 0,
                                   10))
        received = self.received()
        self.assertEqual(set(received), set(ids))
        duplicates = sum(received.values()) - len(ids)
        takeovers = sum(self.stderr(child).count('died while sending it')
                        for child in children)
        messages, dotfiles = self.listing()
        print(f'\n{self.id()}: {kills} SIGKILLs (seed {seed}),'
              f' {takeovers} claims of killed processors taken over,'
              f' {sent_before_final} messages sent before the final run,'
              f' {counts["sent"]} by it; {duplicates} duplicate(s)'
              + (f'; dot-files left: {dotfiles}' if dotfiles else ''),
              file=sys.stderr)
        # --connections 1: each kill interrupts at most one message.
        self.assertLessEqual(duplicates, kills)
        # The kills did land while messages were claimed.
        self.assertGreater(takeovers, 0)
        self.assertEqual(messages, [])
        # A kill between removing a sent message and releasing its claim
        # leaves the claim's files; housekeeping removes them (once they
        # are old enough: here, at once).
        from zope.sendmail.stores.maildir.orphans import remove_orphans
        for sub in ('new', 'cur'):
            remove_orphans(os.path.join(self.queue, sub), min_age=0)
        self.assertEqual([n for n in self.listing()[1]
                          if re.match(r'\w+/\.(sending|claim)-', n)], [])
