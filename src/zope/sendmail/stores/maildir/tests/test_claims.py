"""Tests of the claim protocol across processes, and with 7.3 claims."""
import collections
import os
import select
import subprocess
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.stores.maildir import claim as claims

from zope.sendmail.tests.support.processes import LOCK_HOLDER
from zope.sendmail.tests.support.processes import ProcessTestBase


NEEDS_FLOCK = ('without fcntl (Windows) claims are 7.3\'s links alone: a'
               ' dead processor\'s claim waits 7.3\'s 3 hours')


class ClaimTests(ProcessTestBase):
    """Claims left behind, or held, by other processes."""

    def setUp(self):
        super().setUp()
        self.log = InstalledHandler('zope.sendmail.stores.maildir.claim',
                                    'zope.sendmail.stores.maildir.linkclaim')
        self.addCleanup(self.log.uninstall)
        [self.mid] = self.fill(1)
        [self.name] = os.listdir(os.path.join(self.queue, 'new'))
        self.path = os.path.join(self.queue, 'new', self.name)
        self.lock = os.path.join(self.queue, 'new', '.claim-' + self.name)
        self.sending = os.path.join(self.queue, 'new',
                                    '.sending-' + self.name)
        with open(self.path, 'rb') as f:
            self.data = f.read()

    def process_once(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.thread import QueueProcessorThread
        thread = QueueProcessorThread(
            queuePath=self.queue,
            mailer=SMTPMailer(self.server.host, self.server.port, timeout=10))
        return thread.process_once()

    def assertSent(self, result):
        self.assertEqual(dict(result.counts), {'sent': 1}, result)
        self.assertEqual(self.received(), collections.Counter([self.mid]))
        self.assertEqual(self.listing(), ([], []))

    def assertNotSent(self, result, files):
        self.assertEqual(dict(result.counts), {'busy': 1}, result)
        self.assertEqual(self.server.messages, [])
        self.assertEqual(self.listing(), (['new/' + self.name], files))
        with open(self.path, 'rb') as f:
            self.assertEqual(f.read(), self.data)

    @unittest.skipIf(claims.fcntl is None, NEEDS_FLOCK)
    def test_claim_of_killed_processor_is_taken_over(self):
        # Exactly what a processor killed while sending leaves behind.
        with open(self.lock, 'w') as f:
            f.write('pid 999999 on elsewhere thread T')
        os.link(self.path, self.sending)
        self.assertSent(self.process_once())
        self.assertIn('died while sending it', str(self.log))

    def test_fresh_73_claim_is_respected(self):
        # A live zope.sendmail 7.3 processor claims with the link alone.
        os.link(self.path, self.sending)
        self.assertNotSent(self.process_once(),
                           ['new/.sending-' + self.name])
        self.assertTrue(os.path.samefile(self.path, self.sending))

    def test_stale_73_claim_is_taken_over(self):
        os.link(self.path, self.sending)
        four_hours_ago = time.time() - 4 * 60 * 60
        os.utime(self.sending, (four_hours_ago, four_hours_ago))
        self.assertSent(self.process_once())
        self.assertIn('stale 7.3 claim', str(self.log))

    @unittest.skipIf(claims.fcntl is None, NEEDS_FLOCK)
    def test_live_claim_in_another_process_is_respected(self):
        holder = self.spawn(['-c', LOCK_HOLDER, self.lock],
                            stdout=subprocess.PIPE)
        ready, _, _ = select.select([holder.stdout], [], [], 20)
        self.assertTrue(ready, 'the lock holder did not start in 20 s')
        self.assertEqual(holder.stdout.readline(), b'locked\n',
                         self.stderr(holder))
        os.link(self.path, self.sending)
        self.assertNotSent(self.process_once(),
                           ['new/.claim-' + self.name,
                            'new/.sending-' + self.name])
        # Its death releases the lock: the next pass takes the claim over.
        holder.kill()
        holder.wait(10)
        self.assertSent(self.process_once())
        self.assertIn('died while sending it', str(self.log))
