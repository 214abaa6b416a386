"""Queue processors in separate processes sharing one queue.

The processors run as child processes (`processor_main`) against the test
SMTP server of this process; the claims (``.claim-X`` locks and
``.sending-X`` links) must make every message go out once, survive
processors killed mid-send, and respect the claims of live processors in
other processes.
"""
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until


_MESSAGE_ID = re.compile(rb'^message-id:\s*<([^>]+)>', re.I | re.M)

# A process holding a claim's lock as a live processor does: it writes its
# name into .claim-X, flocks it, says so, and waits to be killed.
LOCK_HOLDER = textwrap.dedent('''\
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, b'pid %d on a test host thread T' % os.getpid(), 0)
    print('locked', flush=True)
    time.sleep(120)
''')


def message_id(data):
    match = _MESSAGE_ID.search(data)
    return match.group(1).decode('ascii') if match else None


class ProcessTestBase(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-processes-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        self.server = self.layer.server
        self.children = 0

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        transaction.abort()

    # Children

    def spawn(self, args, **kw):
        """Start a child; it is killed and reaped after the test, and its
        stderr (a file) is read by `stderr`."""
        self.children += 1
        errpath = os.path.join(self.tmp, f'child-{self.children}.stderr')
        with open(errpath, 'wb') as err:
            child = subprocess.Popen([sys.executable] + args, env=child_env(),
                                     stdin=subprocess.DEVNULL, stderr=err,
                                     cwd=self.tmp, **kw)
        child.errpath = errpath
        self.addCleanup(self.reap, child)
        return child

    def reap(self, child):
        if child.poll() is None:
            child.kill()
        child.wait(10)
        for stream in (child.stdout, child.stdin, child.stderr):
            if stream is not None:
                stream.close()

    def stderr(self, child):
        with open(child.errpath, encoding='utf-8', errors='replace') as f:
            return f.read()

    def processor(self, *options, until_empty=False):
        args = ['-m', 'zope.sendmail.functional.tests.processor_main',
                self.queue,
                self.server.host, str(self.server.port)]
        args += [str(option) for option in options]
        if until_empty:
            args.append('--until-empty')
            return self.spawn(args, stdout=subprocess.PIPE)
        return self.spawn(args, stdout=subprocess.DEVNULL)

    def finish(self, child, timeout=60):
        """Wait for an --until-empty child; return its summed counts."""
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            self.fail(f'processor did not finish within {timeout} s:\n'
                      f'{self.stderr(child)}')
        self.assertEqual(child.returncode, 0, self.stderr(child))
        return collections.Counter(json.loads(out))

    # The queue

    def fill(self, count, per_transaction=100):
        """Queue *count* messages, each with a known Message-Id; return
        their ids."""
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        ids = []
        for n in range(count):
            mid = f'{n}.{os.getpid()}.{time.time():.6f}@processes.test'
            ids.append(delivery.send(
                'alice@example.com', ['bob@example.com'],
                f'Message-Id: <{mid}>\nSubject: message {n}\n\n'
                f'body {n}\n'.encode()))
            if (n + 1) % per_transaction == 0:
                transaction.commit()
        transaction.commit()
        return ids

    def listing(self):
        """Message files and dot-files left in new/ and cur/."""
        messages, dotfiles = [], []
        for sub in ('new', 'cur'):
            for name in os.listdir(os.path.join(self.queue, sub)):
                (dotfiles if name.startswith('.') else messages).append(
                    f'{sub}/{name}')
        return sorted(messages), sorted(dotfiles)

    def received(self):
        """The multiset of Message-Ids the server accepted."""
        return collections.Counter(message_id(m.data)
                                   for m in self.server.messages)


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
