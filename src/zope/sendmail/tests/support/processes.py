"""Queue processors in child processes, against the test SMTP server of
this process: `ProcessTestBase` spawns them (``processor_main``), reaps
them, fills the queue and reads back what the server received;
`LOCK_HOLDER` is a child holding a claim's lock as a live processor does.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import child_env


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


def send_numbered(delivery, count, per_transaction, tag, domain):
    """Send *count* numbered messages through *delivery*, each with a known
    Message-Id (``N.TAG.TIME@DOMAIN``), committing every *per_transaction*
    and at the end; return their Message-Ids."""
    ids = []
    for n in range(count):
        mid = f'{n}.{tag}.{time.time():.6f}@{domain}'
        ids.append(delivery.send(
            'alice@example.com', ['bob@example.com'],
            f'Message-Id: <{mid}>\r\nSubject: message {n}\r\n\r\n'
            f'body {n}\r\n'.encode()))
        if (n + 1) % per_transaction == 0:
            transaction.commit()
    transaction.commit()
    return ids


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
        return send_numbered(delivery, count, per_transaction,
                             f'{os.getpid()}', 'processes.test')

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
