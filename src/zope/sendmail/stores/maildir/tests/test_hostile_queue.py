"""A queue directory holding what no delivery wrote: a FIFO, symbolic
links to a secret and to /dev/zero, odd claim files.  The processor, its
thread, the zope-sendmail program and its --list neither hang nor read
nor quote them; the real messages beside them are sent.  Real files, a
real SMTP server and real processes."""
import io
import os
import subprocess
import sys
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.processes import ProcessTestBase
from zope.sendmail.tests.support.hostile import SECRET
from zope.sendmail.tests.support.hostile import in_thread


NOBODY = 65534
AS_ROOT = 'needs root, to give a file to another user (tests run as root)'


class HostileQueueTestBase(ProcessTestBase):

    def setUp(self):
        super().setUp()
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.ids = self.fill(2)
        self.new = os.path.join(self.queue, 'new')
        self.secret = os.path.join(self.tmp, 'secret')
        with open(self.secret, 'w') as f:
            f.write(f'{SECRET}\nX-Zope-To: {SECRET}@example.com\n')
        self.events = []

    def thread(self, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.thread import QueueProcessorThread
        thread = QueueProcessorThread(
            queuePath=self.queue, interval=0.05, **kw,
            mailer=SMTPMailer(self.server.host, self.server.port, timeout=10))
        thread.processor.notify = self.events.append
        return thread

    def process_once(self, thread=None):
        thread = thread or self.thread()
        return in_thread(thread.process_once)

    def queue_files(self):
        """The bytes of every regular file of the queue, by path."""
        found = {}
        for top, dirs, files in os.walk(self.queue):
            for name in files:
                path = os.path.join(top, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, 'rb') as f:
                        found[path] = f.read()
        return found

    def assertNothingQuoted(self, *texts):
        self.assertNotIn(SECRET, str(self.log))
        for path, data in self.queue_files().items():
            # Not in any file but the ones a test put there, as they are.
            if not os.path.basename(path).startswith(('1', '.rejected-')):
                self.assertNotIn(SECRET.encode(), data, path)
        for event in self.events:
            self.assertNotIn(SECRET, getattr(event, 'errorMessage', ''))
        for text in texts:
            self.assertNotIn(SECRET, text)

    def listing(self):
        from zope.sendmail.console import queueops
        out = io.StringIO()
        in_thread(lambda: queueops.listing(self.queue, out, time.time()))
        return out.getvalue()

    def zope_sendmail(self, *args, timeout=60):
        try:
            return subprocess.run(
                [sys.executable, '-m', 'zope.sendmail.console', *args],
                env=child_env(), capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail(f'zope-sendmail {args} did not exit in {timeout} s')

    def records(self, text):
        return [r for r in self.log.records if text in r.getMessage()]


class OddEntriesTests(HostileQueueTestBase):

    def test_fifo_in_new(self):
        fifo = os.path.join(self.new, '0.M1P1Q1.fifo')
        os.mkfifo(fifo)
        thread = self.thread()
        result = self.process_once(thread)
        self.assertEqual(dict(result.counts), {'sent': 2})
        self.assertEqual(self.received(), dict.fromkeys(self.ids, 1))
        for i in range(3):  # said once, not at every pass
            self.assertEqual(dict(self.process_once(thread).counts), {})
        [record] = self.records('0.M1P1Q1.fifo')
        self.assertEqual((record.levelname, record.getMessage()), (
            'ERROR', f"queue {self.queue}: skipped 'new/0.M1P1Q1.fifo': it"
                     f" is a FIFO, not a message; it is never read (remove"
                     f" it)"))
        # A new one is said again once the old one is gone.
        os.unlink(fifo)
        self.process_once(thread)
        os.mkfifo(fifo)
        self.process_once(thread)
        self.assertEqual(len(self.records('0.M1P1Q1.fifo')), 2)
        from zope.sendmail.stores.maildir.folder import Maildir
        self.assertEqual(in_thread(lambda: list(Maildir(self.queue))), [])
        text = self.listing()
        self.assertIn("new/0.M1P1Q1.fifo\n  not a message: a FIFO, never"
                      " read nor followed (remove it)\n0 messages\n", text)

    def test_thread_with_a_fifo_stops_promptly(self):
        os.mkfifo(os.path.join(self.new, '0.M1P1Q1.fifo'))
        os.mkfifo(os.path.join(self.queue, 'cur', '0.M1P1Q2.fifo'))
        thread = self.thread()
        thread.start()
        self.addCleanup(thread.stop, 10)
        self.server.wait_for(2, timeout=10)
        started = time.monotonic()
        self.assertTrue(thread.stop(timeout=10))
        self.assertLess(time.monotonic() - started, 5)

    def test_one_shot_program_and_list_with_a_fifo(self):
        os.mkfifo(os.path.join(self.new, '0.M1P1Q1.fifo'))
        os.mkfifo(os.path.join(self.queue, 'cur', '0.M1P1Q2.fifo'))
        run = self.zope_sendmail('--hostname', self.server.host, '--port',
                                 str(self.server.port), '--no-tls',
                                 self.queue)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(self.received(), dict.fromkeys(self.ids, 1))
        self.assertIn("skipped 'new/0.M1P1Q1.fifo': it is a FIFO",
                      run.stderr)
        for args in (['--list'], ['--purge-rejected', '0'],
                     ['--requeue-rejected'], ['--status']):
            run = self.zope_sendmail(*args, self.queue)
            self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn('not messages:   2 (see --list)', run.stdout)
        self.assertEqual(sorted(os.listdir(self.new)), ['0.M1P1Q1.fifo'])

    def test_symlinks_to_a_secret_and_to_dev_zero(self):
        os.symlink(self.secret, os.path.join(self.new, '0.M1P1Q1.secret'))
        os.symlink('/dev/zero', os.path.join(self.new, '0.M1P1Q2.zero'))
        os.symlink(self.secret, os.path.join(self.queue, 'cur', '0.M1P1Q3'))
        os.symlink(self.secret, os.path.join(self.new,
                                             '.rejected-0.M1P1Q4.secret'))
        os.symlink(self.secret, os.path.join(self.new, '.reason-0.M1P1Q5'))
        with open(os.path.join(self.new, '.rejected-0.M1P1Q5'), 'wb') as f:
            f.write(b'X-Zope-From: a@example.com\nX-Zope-To: b@example.com\n'
                    b'\nbody\n')
        result = self.process_once()
        self.assertEqual(dict(result.counts), {'sent': 2})
        text = self.listing()
        self.assertIn("new/0.M1P1Q1.secret\n  not a message: a symbolic"
                      " link, never read nor followed", text)
        self.assertIn("new/0.M1P1Q2.zero\n  not a message: a symbolic"
                      " link", text)
        self.assertIn("  reason:       (not shown: '.reason-0.M1P1Q5' is a"
                      " symbolic link)", text)
        self.assertNothingQuoted(text)
        # Nothing was linked to, moved or set aside.
        self.assertEqual(sorted(os.listdir(self.new)), [
            '.reason-0.M1P1Q5', '.rejected-0.M1P1Q4.secret',
            '.rejected-0.M1P1Q5', '0.M1P1Q1.secret', '0.M1P1Q2.zero'])
        self.assertEqual(len(self.records('symbolic link')), 3)
        # The operator's operations touch no link.
        from zope.sendmail.console import queueops
        out = io.StringIO()
        self.assertEqual(queueops.purge_rejected(self.queue, 0, out,
                                                 time.time() + 60), 1)
        self.assertTrue(os.path.islink(os.path.join(
            self.new, '.rejected-0.M1P1Q4.secret')))
        self.assertEqual(queueops.requeue_rejected(self.queue, out), 0)
        with open(self.secret) as f:
            self.assertTrue(f.read().startswith(SECRET))

    def test_a_regular_file_that_is_no_queue_file(self):
        # Its reason says what is wrong, not what it holds.
        with open(os.path.join(self.new, '0.M1P1Q1.junk'), 'w') as f:
            f.write(f'{SECRET}\n{SECRET}\n')
        result = self.process_once()
        self.assertEqual(dict(result.counts), {'sent': 2, 'rejected': 1})
        with open(os.path.join(self.new, '.reason-0.M1P1Q1.junk')) as f:
            self.assertEqual(f.read(), 'unreadable queue file 0.M1P1Q1.junk:'
                             ' queue file does not start with an X-Zope-From'
                             ' line\n')
        [event] = [e for e in self.events if hasattr(e, 'errorMessage')]
        self.assertEqual(event.messageId, '0.M1P1Q1.junk')
        self.assertNothingQuoted(self.listing())

    def test_retry_file_that_is_a_link(self):
        self.server.fail_data(451, '4.3.0 try later')
        self.process_once()
        cur = os.path.join(self.queue, 'cur')
        [retry] = [n for n in sorted(os.listdir(cur))
                   if n.startswith('.retry-')][:1]
        os.unlink(os.path.join(cur, retry))
        os.symlink(self.secret, os.path.join(cur, retry))
        text = self.listing()
        self.assertIn('deferred', text)
        # Due again: the link is not read, the attempts start afresh.
        for name in os.listdir(cur):
            if not name.startswith('.'):
                os.utime(os.path.join(cur, name), (0, 0))
        self.assertEqual(dict(self.process_once().counts), {'deferred': 2})
        self.assertEqual(len(self.records('counted afresh')), 1)
        self.assertNothingQuoted(text, self.listing())
        self.assertFalse(os.path.islink(os.path.join(cur, retry)))


class ClaimFilesTests(HostileQueueTestBase):
    """A claim file the processor cannot trust waits out the bound, said
    once, then is broken; the message is sent."""

    def claim_file(self, make):
        [name] = [n for n in os.listdir(self.new)
                  if not n.startswith('.')][:1]
        lock = os.path.join(self.new, '.claim-' + name)
        make(lock)
        return lock

    def check(self, lock, why):
        thread = self.thread()
        for i in range(3):
            result = self.process_once(thread)
            self.assertEqual(dict(result.counts), {'sent': 1, 'busy': 1}
                             if i == 0 else {'busy': 1})
        [record] = self.records('cannot use the claim file')
        self.assertIn(': ' + why + '; the message waits until it is 3600 s'
                      ' old, then the claim is broken', record.getMessage())
        old = time.time() - 3601
        os.utime(lock, (old, old), follow_symlinks=False)
        self.assertEqual(dict(self.process_once(thread).counts),
                         {'sent': 1})
        self.assertEqual(self.received(), dict.fromkeys(self.ids, 1))
        self.assertEqual(len(self.records('broke the claim')), 1)
        self.assertEqual(os.listdir(self.new), [])
        self.assertNothingQuoted()

    def test_symlinked_claim(self):
        self.check(self.claim_file(lambda p: os.symlink(self.secret, p)),
                   'it is a symbolic link')
        with open(self.secret) as f:
            self.assertTrue(f.read().startswith(SECRET))

    def test_fifo_claim(self):
        self.check(self.claim_file(os.mkfifo), 'it is a FIFO')

    @unittest.skipUnless(os.geteuid() == 0, AS_ROOT)
    def test_another_users_claim(self):
        def make(path):
            open(path, 'w').close()
            os.chown(path, NOBODY, -1)
        self.check(self.claim_file(make),
                   f'it belongs to another user (uid {NOBODY})')

    def test_a_claim_dated_in_the_future_is_no_younger(self):
        lock = self.claim_file(lambda p: os.symlink(self.secret, p))
        later = time.time() + 7200
        os.utime(lock, (later, later), follow_symlinks=False)
        self.assertEqual(dict(self.process_once().counts), {'sent': 2})

    def test_on_a_network_file_system_the_bound_is_the_lease(self):
        from zope.sendmail.stores.maildir.claim import claim
        lock = self.claim_file(lambda p: os.symlink(self.secret, p))
        path = os.path.join(self.new, os.path.basename(lock)[7:])
        self.assertIsNone(claim(path, stale_after=60))
        old = time.time() - 61
        os.utime(lock, (old, old), follow_symlinks=False)
        held = claim(path, stale_after=60)
        self.assertIsNotNone(held)
        held.release()
