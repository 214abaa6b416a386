"""Memory: sending a big message costs about twice its size, not five
times; an endless reply costs next to nothing, and not for long.

The sender runs in a process of its own (`memory_probe`), the test server
in this one, so that the figures are the sender's alone.  The bounds are
generous safety properties, not speed targets.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from zope.sendmail.tests.support import child_env
from zope.sendmail.testserver import make_layer


#: The size of the big message.
SIZE = 50 * 2 ** 20

BigMessageLayer = make_layer('BigMessageLayer', data_size_limit=None)


def measurable():
    """Why peak memory cannot be measured here, or None."""
    if not os.path.exists('/proc/self/clear_refs'):
        return 'peak memory is measured with Linux /proc/self/clear_refs'
    return None


class MemoryTests(unittest.TestCase):

    layer = BigMessageLayer

    def setUp(self):
        reason = measurable()
        if reason:
            self.skipTest(reason)
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')

    def _probe(self, scenario, size=SIZE):
        server = self.layer.server
        done = subprocess.run(
            [sys.executable, '-m',
             'zope.sendmail.functional.tests.memory_probe',
             scenario, server.host, str(server.port), str(size),
             self.queue], env=child_env(), capture_output=True, text=True,
            timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr)
        figures = json.loads(done.stdout.splitlines()[-1])
        figures['growth'] = (figures['peak_kb'] - figures['before_kb']) \
            * 1024 / figures['size']
        return figures

    def _received(self):
        [message] = self.layer.server.wait_for(1, timeout=60)
        return message.data

    def test_queue_processor(self):
        from zope.sendmail.message import crlf
        from zope.sendmail.stores.maildir.envelope import format_envelope
        from zope.sendmail.stores.maildir.folder import Maildir
        from zope.sendmail.functional.tests.memory_probe import message_of
        message = b'Message-Id: <big@example.com>\r\n' + crlf(
            message_of(SIZE))
        writer = Maildir(self.queue, create=True).newMessage()
        writer.write(format_envelope('alice@example.com',
                                     ['bob@example.com']))
        writer.write(message)
        writer.commit()
        figures = self._probe('processor')
        self.assertEqual(figures['outcome'], {'sent': 1})
        self.assertEqual(self._received(), message)
        # Read once (1x) and sent from that: no copies of it.
        self.assertLess(figures['growth'], 2.0, figures)

    def test_direct_delivery(self):
        from zope.sendmail.functional.tests.memory_probe import message_of
        figures = self._probe('direct')
        self.assertEqual(figures['outcome'], 'committed')
        data = self._received()
        self.assertTrue(data.startswith(b'Message-Id: <'))
        self.assertTrue(data.endswith(b'\r\n' + message_of(SIZE)[-76:]
                                      .replace(b'\n', b'\r\n')))
        self.assertEqual(data.count(b'\r\n'), message_of(SIZE).count(
            b'\n') + 1)
        # Line endings made CRLF (1x) and a Message-Id added (1x), besides
        # the caller's own message.
        self.assertLess(figures['growth'], 3.0, figures)

    def test_queued_delivery(self):
        figures = self._probe('queued')
        self.assertEqual(figures['outcome'], 'committed')
        self.assertLess(figures['growth'], 3.0, figures)

    def test_endless_reply(self):
        server = self.layer.server
        server.endless_reply = 'EHLO'
        figures = self._probe('endless', size=1)
        self.assertIn('the reply to EHLO of the relay', figures['outcome'])
        self.assertIn('had more than 100 lines', figures['outcome'])
        self.assertLess(figures['seconds'], 10)
        self.assertLess(figures['peak_kb'] - figures['before_kb'], 10240)
