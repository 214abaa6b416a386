"""The zope-sendmail program as a daemon, in a process of its own: it sends
what is queued, and on SIGTERM or SIGINT finishes the message it is sending
and exits 0, losing and duplicating nothing and leaving no claim behind."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import SRC
from zope.sendmail.tests.support import wait_until


_MESSAGE_ID = re.compile(rb'^message-id:\s*<([^>]+)>', re.I | re.M)


class DaemonTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-daemon-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        os.mkdir(self.queue)
        self.log_path = os.path.join(self.tmp, 'stderr.log')
        self.sent = []
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)

    def _start(self):
        server = self.layer.server
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [SRC] + [p for p in sys.path if p and p != SRC])
        with open(self.log_path, 'wb') as log:
            child = subprocess.Popen(
                [sys.executable, '-m', 'zope.sendmail.console', '--daemon',
                 '--hostname', server.host, '--port', str(server.port),
                 '--interval', '0.1', '--connections', '1', self.queue],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(self._kill, child)
        return child

    def _kill(self, child):
        if child.poll() is None:
            child.kill()
            child.wait(10)

    def _stderr(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return f.read()

    def _queue(self, count, what):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue)
        for n in range(count):
            self.sent.append(delivery.send(
                'shop@example.com', [f'c{n}@example.com'],
                f'Subject: {what} {n}\n\nHello.\n'))
        transaction.commit()

    def _files(self, prefix=''):
        return [name for sub in ('new', 'cur')
                for name in os.listdir(os.path.join(self.queue, sub))
                if name.startswith(prefix) and (prefix or name[0] != '.')]

    def _stop(self, child, signum):
        child.send_signal(signum)
        started = time.monotonic()
        try:
            status = child.wait(15)
        except subprocess.TimeoutExpired:
            self.fail(f'zope-sendmail did not stop:\n{self._stderr()}')
        return status, time.monotonic() - started

    def test_sends_then_stops_cleanly_while_sending(self):
        server = self.layer.server
        child = self._start()
        self._queue(3, 'first')
        server.wait_for(3, timeout=15)
        # Slow replies: each message now takes about a second to send.
        server.delay = 0.2
        self._queue(6, 'second')
        self.assertTrue(
            wait_until(lambda: self._files('.sending-'), timeout=15),
            f'nothing being sent:\n{self._stderr()}')
        status, took = self._stop(child, signal.SIGTERM)
        self.assertEqual(status, 0, self._stderr())
        self.assertLess(took, 5)
        self.assertIn('SIGTERM received', self._stderr())
        received = [_MESSAGE_ID.search(m.data).group(1).decode()
                    for m in server.messages]
        self.assertEqual(len(received), len(set(received)), 'duplicates')
        left = []
        for sub in ('new', 'cur'):
            directory = os.path.join(self.queue, sub)
            for name in os.listdir(directory):
                if not name.startswith('.'):
                    with open(os.path.join(directory, name), 'rb') as f:
                        left.append(
                            _MESSAGE_ID.search(f.read()).group(1).decode())
        self.assertEqual(sorted(received + left), sorted(self.sent))
        self.assertGreater(len(received), 3)   # the one in flight finished
        self.assertTrue(left, 'stopped only after sending everything')
        self.assertEqual(self._files('.claim-') + self._files('.sending-'),
                         [])

    def test_sigint_when_idle(self):
        child = self._start()
        self._queue(1, 'one')
        self.layer.server.wait_for(1, timeout=15)
        self.assertTrue(wait_until(lambda: not self._files(), timeout=5))
        status, took = self._stop(child, signal.SIGINT)
        self.assertEqual(status, 0, self._stderr())
        self.assertLess(took, 5)
        log = self._stderr()
        self.assertIn('SIGINT received', log)
        self.assertNotIn('Traceback', log)
