"""Claims without fcntl (Windows): 7.3's hard-link protocol.

`linkclaim` is tested here on real files; then, in child
processes where ``import fcntl`` fails as on Windows, the package is shown
to choose it, pass the claim and processor tests with it, and send every
message of a queue shared by three such processors exactly once.
"""
import collections
import os
import subprocess
import sys
import tempfile
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import SRC
from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.processes import ProcessTestBase


HOUR = 3600

# Where ``import fcntl`` raises ImportError, as on Windows.
WITHOUT_FCNTL = "import sys; sys.modules['fcntl'] = None; "

PROCESSOR = WITHOUT_FCNTL + (
    "from zope.sendmail.stores.maildir import claim, linkclaim; "
    "assert claim.claim is linkclaim.claim; "
    "from zope.sendmail.functional.tests.processor_main import main; "
    "sys.exit(main(sys.argv[1:]))")

TEST_RUN = WITHOUT_FCNTL + (
    "import zope.testrunner; "
    "sys.exit(zope.testrunner.run(sys.argv[1:]))")

# The claim and processor tests, and this module's own.
MODULES = ('test_claims', 'test_processor', 'test_processor_relay',
           'test_linkclaim', 'test_compat73$')


class LinkClaimTests(unittest.TestCase):

    def setUp(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        self.tmp = tempfile.TemporaryDirectory(prefix='zope.sendmail-link-')
        self.addCleanup(self.tmp.cleanup)
        self.queue = os.path.join(self.tmp.name, 'queue')
        Maildir(self.queue, create=True)
        self.log = InstalledHandler('zope.sendmail.stores.maildir.linkclaim')
        self.addCleanup(self.log.uninstall)

    def test_a_link_in_place_of_a_message_is_never_claimed(self):
        from zope.sendmail.stores.maildir.linkclaim import claim
        secret = os.path.join(self.tmp.name, 'secret')
        with open(secret, 'w') as f:
            f.write('SECRET\n')
        os.utime(secret, (1000, 1000))
        path = os.path.join(self.queue, 'new', '1.M1P1Q2.link')
        os.symlink(secret, path)
        self.assertIsNone(claim(path))
        self.assertEqual(os.listdir(os.path.join(self.queue, 'new')),
                         ['1.M1P1Q2.link'])
        self.assertEqual(os.stat(secret).st_mtime, 1000)  # not touched
        self.assertIn("cannot claim %r: a symbolic link; it is never read"
                      % path, str(self.log))

    def _message(self, sub='new', mtime=None):
        path = os.path.join(self.queue, sub, '1.M1P1Q1.host')
        with open(path, 'wb') as f:
            f.write(b'X-Zope-From: a@x\nX-Zope-To: b@y\n\nSubject: s\n\n')
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def _sending(self, path):
        directory, name = os.path.split(path)
        return os.path.join(directory, '.sending-' + name)

    def _claim(self, path):
        from zope.sendmail.stores.maildir.linkclaim import claim
        return claim(path)

    def test_claim_is_a_hard_link_as_73_makes(self):
        path = self._message()
        claim = self._claim(path)
        self.assertTrue(claim.held)
        self.assertTrue(os.path.samefile(path, self._sending(path)))
        self.assertIsNone(self._claim(path))  # held: busy
        claim.release()
        self.assertFalse(claim.held)
        self.assertFalse(os.path.exists(self._sending(path)))
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))),
                         [os.path.basename(path)])

    def test_fresh_claim_of_another_processor_is_respected(self):
        path = self._message()
        os.link(path, self._sending(path))
        self.assertIsNone(self._claim(path))
        self.assertTrue(os.path.exists(self._sending(path)))

    def test_claim_older_than_73s_limit_is_taken_over(self):
        from zope.sendmail.stores.maildir.names import MAX_73_SEND_TIME
        self.assertEqual(MAX_73_SEND_TIME, 3 * HOUR)
        path = self._message(mtime=time.time() - 4 * HOUR)
        os.link(path, self._sending(path))
        claim = self._claim(path)
        self.assertIsNotNone(claim)
        self.assertIn('stale 7.3 claim', str(self.log))
        # Touched, so that 7.3 processors see a claim of now.
        self.assertLess(time.time() - os.stat(path).st_mtime, 60)
        claim.complete()
        self.assertEqual(os.listdir(os.path.dirname(path)), [])

    def test_gone_message_is_not_claimed(self):
        self.assertIsNone(self._claim(os.path.join(self.queue, 'new', 'x')))
        self.assertEqual(os.listdir(os.path.join(self.queue, 'new')), [])

    def test_due_time_of_a_deferred_message_survives_the_claim(self):
        now = time.time()
        later = self._claim(self._message('cur', mtime=now + HOUR))
        self.assertFalse(later.due(now))
        later.release()
        earlier = self._claim(self._message('cur', mtime=now - 60))
        self.assertTrue(earlier.due(now))
        earlier.defer(now + HOUR, b'attempts: 1\n')
        path = os.path.join(self.queue, 'cur', '1.M1P1Q1.host')
        self.assertEqual(os.stat(path).st_mtime, now + HOUR)
        self.assertEqual(sorted(os.listdir(os.path.join(self.queue, 'cur'))),
                         ['.retry-1.M1P1Q1.host', '1.M1P1Q1.host'])

    def test_release_leaves_a_claim_that_is_not_its_own(self):
        path = self._message()
        claim = self._claim(path)
        os.unlink(self._sending(path))  # taken over as stale, say
        with open(self._sending(path), 'wb'):
            pass  # someone else's file now
        claim.release()
        self.assertTrue(os.path.exists(self._sending(path)))

    def test_strategy_chosen_once_by_the_claim_module(self):
        from zope.sendmail.stores.maildir import claim
        from zope.sendmail.stores.maildir import linkclaim
        self.assertEqual(claim.claim is linkclaim.claim, claim.fcntl is None)


class WithoutFcntlTests(ProcessTestBase):
    """Child processes in which ``import fcntl`` fails."""

    def test_claim_and_processor_tests_pass_without_fcntl(self):
        if 'fcntl' in sys.modules and sys.modules['fcntl'] is None:
            self.skipTest('already running without fcntl')
        args = [sys.executable, '-c', TEST_RUN, '--test-path', SRC,
                '-s', 'zope.sendmail']
        for module in MODULES:
            args += ['-m', module]
        child = subprocess.run(args, env=child_env(), cwd=self.tmp,
                               capture_output=True, text=True, timeout=300)
        output = child.stdout + child.stderr
        self.assertEqual(child.returncode, 0, output)
        self.assertNotIn('Failure in', output)
        self.assertNotIn('Error in', output)
        self.assertIn(' 0 failures, 0 errors', output)

    def test_three_processors_without_fcntl_send_every_message_once(self):
        ids = self.fill(150)
        self.server.delay = 0.001  # so that the passes overlap
        children = [
            self.spawn(['-c', PROCESSOR, self.queue, self.server.host,
                        str(self.server.port), '--until-empty',
                        '--connections', '4', '--interval', '0.1'],
                       stdout=subprocess.PIPE)
            for _ in range(3)]
        counts = [self.finish(child) for child in children]
        received = self.received()
        self.assertEqual(received, collections.Counter(ids),
                         f'duplicates: {received - collections.Counter(ids)}')
        self.assertEqual(sum(c['sent'] for c in counts), 150, counts)
        messages, dotfiles = self.listing()
        self.assertEqual(messages, [])
        self.assertEqual([n for n in dotfiles if '.sending-' in n], [])
