"""Tests of the queue processor thread's lifecycle, over the test server."""
import os
import shutil
import tempfile
import time
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import wait_until


class QueueProcessorThreadTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')
        self.threads = []
        self.log = InstalledHandler('zope.sendmail')

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        for thread in self.threads:
            thread.stop(5)
        dispatcher.stop()
        self.log.uninstall()
        transaction.abort()
        shutil.rmtree(self.tmp)

    def _getTargetClass(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        return QueueProcessorThread

    def _makeOne(self, mailer=None, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        if mailer is None:
            mailer = SMTPMailer(server.host, server.port, timeout=5)
        kw.setdefault('interval', 0.05)
        thread = self._getTargetClass()(mailer=mailer, queuePath=self.queue,
                                        **kw)
        self.threads.append(thread)
        return thread

    def _queue(self, count=1, toaddrs=('bob@example.com',)):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue)
        for n in range(count):
            delivery.send('alice@example.com', list(toaddrs),
                          b'Subject: %d\n\nbody\n' % n)
        transaction.commit()

    def _left(self):
        return [n for sub in ('new', 'cur')
                for n in os.listdir(os.path.join(self.queue, sub))
                if not n.startswith('.')]

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailQueueProcessor
        thread = self._makeOne(interval=2.5)
        verifyObject(IMailQueueProcessor, thread)
        self.assertEqual(thread.pollingInterval, 2500)
        self.assertEqual(thread.queuePath, self.queue)

    def test_73_setters(self):
        from zope.sendmail.delivery import QueueProcessorThread
        from zope.sendmail.stores.maildir.folder import Maildir
        self.assertIs(QueueProcessorThread, self._getTargetClass())
        thread = QueueProcessorThread()
        self.assertTrue(thread.daemon)
        self.assertEqual(thread.interval, 3.0)
        with self.assertRaisesRegex(ValueError, 'needs a mailer and a queue'):
            thread.start()
        thread.setQueuePath(self.queue)
        self.assertTrue(os.path.isdir(os.path.join(self.queue, 'new')))
        maildir = Maildir(self.queue)
        thread.setMaildir(maildir)
        self.assertIs(thread.maildir, maildir)
        mailer = object()
        thread.setMailer(mailer)
        self.assertIs(thread.processor.mailer, mailer)
        self.assertFalse(thread.is_alive())
        self.assertTrue(thread.stop())  # never started: harmless

    def test_73_setMaildir_uses_the_folder_given(self):
        # 7.3's thread listed the folder given to setMaildir (its tests
        # give stubs): its iteration is what the queue holds.
        from zope.sendmail.delivery import QueueProcessorThread
        from zope.sendmail.smtp.mailer import SMTPMailer
        self._queue(3)
        new = os.path.join(self.queue, 'new')
        paths = sorted(os.path.join(new, n) for n in os.listdir(new))
        folder = ListedFolder(paths[:2])
        server = self.layer.server
        thread = QueueProcessorThread()
        thread.setMailer(SMTPMailer(server.host, server.port, timeout=5))
        thread.setMaildir(folder)
        self.assertIs(thread.maildir, folder)
        self.assertIs(thread.store.maildir, folder)
        thread.run(forever=False)
        self.assertGreaterEqual(folder.listed, 1)
        self.assertEqual(len(server.messages), 2)
        self.assertEqual(self._left(), [os.path.basename(paths[2])])

    def test_bad_interval(self):
        with self.assertRaisesRegex(ValueError, 'interval must be positive'):
            self._getTargetClass()(interval=0)

    def test_runs_and_stops(self):
        thread = self._makeOne()
        self._queue(3)
        thread.start()
        self.layer.server.wait_for(3)
        self.assertTrue(wait_until(lambda: not self._left()))
        self.assertTrue(thread.stop(2))
        self.assertFalse(thread.is_alive())

    def test_commit_wakes_the_thread(self):
        thread = self._makeOne(interval=60)
        thread.start()
        time.sleep(0.1)  # the first pass found nothing; next one in 60 s
        started = time.monotonic()
        self._queue(1)
        self.layer.server.wait_for(1, timeout=5)
        self.assertLess(time.monotonic() - started, 2)

    def test_stop_is_prompt_while_the_relay_is_slow(self):
        server = self.layer.server
        server.delay = 0.1  # each message takes about half a second
        thread = self._makeOne(connections=1)
        self._queue(20)
        thread.start()
        server.wait_for(1, timeout=10)
        started = time.monotonic()
        self.assertTrue(thread.stop(5))
        self.assertLess(time.monotonic() - started, 1.0)
        # The message in flight was finished, not cut off: whatever the
        # server got is no longer queued, and the rest is intact.
        self.assertEqual(len(server.messages) + len(self._left()), 20)
        claims = [n for n in os.listdir(os.path.join(self.queue, 'new'))
                  if n.startswith(('.claim-', '.sending-'))]
        self.assertEqual(claims, [])

    def test_survives_a_vanishing_file_and_a_corrupt_one(self):
        server = self.layer.server
        server.delay = 0.01
        self._queue(10)
        with open(os.path.join(self.queue, 'new', '1.corrupt'), 'wb') as f:
            f.write(b'garbage')
        victim = sorted(self._left())[-1]
        thread = self._makeOne(connections=1)
        thread.start()
        server.wait_for(1)
        try:
            os.unlink(os.path.join(self.queue, 'new', victim))
        except FileNotFoundError:
            pass  # already sent: the race went the other way
        self.assertTrue(wait_until(lambda: not self._left()))
        self.assertIn(len(server.messages), (9, 10))
        self.assertIn('.rejected-1.corrupt',
                      os.listdir(os.path.join(self.queue, 'new')))
        self.assertTrue(thread.is_alive())
        self._queue(1)
        self.assertTrue(wait_until(lambda: not self._left()))

    def test_survives_the_queue_disappearing(self):
        thread = self._makeOne()
        thread.retry.first = 0.05
        thread.start()
        time.sleep(0.1)
        shutil.rmtree(self.queue)
        time.sleep(0.2)
        self.assertTrue(thread.is_alive())
        self._queue(1)  # makes the queue again
        self.layer.server.wait_for(1)

    def test_backs_off_while_the_relay_is_unreachable(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.retry import RetryPolicy
        from zope.sendmail.tests.support import closed_port
        thread = self._makeOne(SMTPMailer('127.0.0.1', closed_port()),
                               interval=0.01,
                               retry=RetryPolicy(first=0.1, factor=2))
        self._queue(2)
        thread.start()
        time.sleep(1.0)
        errors = [r for r in self.log.records
                  if 'relay unavailable' in r.getMessage()]
        # 0.1 + 0.2 + 0.4: four attempts in a second, not a hundred.
        self.assertLessEqual(len(errors), 5)
        self.assertGreaterEqual(len(errors), 2)
        self.assertEqual(len(self._left()), 2)
        self.assertEqual(os.listdir(os.path.join(self.queue, 'cur')), [])

    def test_housekeeping(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        Maildir(self.queue, create=True)
        old = time.time() - 37 * 3600
        stale = os.path.join(self.queue, 'tmp', 'stale')
        fresh = os.path.join(self.queue, 'tmp', 'fresh')
        orphans = [os.path.join(self.queue, 'new', '.claim-gone'),
                   os.path.join(self.queue, 'cur', '.retry-gone')]
        for path in [stale, fresh] + orphans:
            open(path, 'w').close()
        for path in [stale] + orphans:
            os.utime(path, (old, old))
        self._makeOne().process_once()
        self.assertEqual(os.listdir(os.path.join(self.queue, 'tmp')),
                         ['fresh'])
        for path in orphans:
            self.assertFalse(os.path.exists(path), path)


class ListedFolder:
    """A folder of zope.sendmail 7.3's kind: what its iteration yields
    (the paths it was given) is what the queue holds."""

    def __init__(self, paths):
        self.paths = paths
        self.listed = 0

    def __iter__(self):
        self.listed += 1
        return iter(self.paths)
