"""Running a helper program within bounds, with real helper scripts: its
output capped, its time bounded, its process group killed past a bound,
and no waiting for what it leaves behind holding its output."""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from zope.sendmail.tests.support import wait_until


def running(pid):
    """Whether process *pid* runs (a zombie, dead but not yet reaped by
    whoever inherited it, does not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        # No /proc: the signal 0 says whether the process exists.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ('Z', 'X')


@unittest.skipUnless(hasattr(os, 'killpg'), 'process groups are POSIX')
class RunHelperTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-helper-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.pids = os.path.join(self.tmp, 'pids')

    def _callFUT(self, argv, timeout=10, **kw):
        from zope.sendmail.smtp.helperprocess import run_helper
        return run_helper(argv, timeout, **kw)

    def _python(self, text):
        path = os.path.join(self.tmp, 'helper.py')
        with open(path, 'w') as f:
            f.write(f'import os, subprocess, sys, time\n'
                    f'PIDS = {self.pids!r}\n' + text)
        return [sys.executable, path]

    def _shell(self, text):
        path = os.path.join(self.tmp, 'helper.sh')
        with open(path, 'w') as f:
            f.write(f'#!/bin/sh\nPIDS={self.pids}\n' + text)
        os.chmod(path, 0o700)
        return [path]

    def _pids(self):
        """The process ids the helper wrote down; each is killed at the
        end of the test if it still runs."""
        assert wait_until(lambda: os.path.exists(self.pids), timeout=10)
        with open(self.pids) as f:
            pids = [int(line) for line in f.read().split()]
        for pid in pids:
            self.addCleanup(self._kill, pid)
        return pids

    def _kill(self, pid):
        if running(pid):
            os.kill(pid, signal.SIGKILL)

    def test_output_error_and_status(self):
        done = self._callFUT(self._python(
            'print("tok")\nsys.stderr.write("note\\n")\nsys.exit(3)'))
        self.assertEqual((done.returncode, done.stdout, done.stderr),
                         (3, b'tok\n', b'note\n'))

    def test_in_a_session_of_its_own(self):
        done = self._callFUT(self._python(
            'print(os.getpid(), os.getpgid(0), os.getsid(0))'))
        pid, group, session = map(int, done.stdout.split())
        self.assertEqual((group, session), (pid, pid))
        self.assertNotEqual(group, os.getpgid(0))

    def test_a_300_mb_printer_is_stopped_at_64_kb(self):
        from zope.sendmail.smtp.helperprocess import OutputLimitExceeded
        argv = self._python(
            'open(PIDS, "w").write(str(os.getpid()))\n'
            'chunk = b"x" * (1 << 20)\n'
            'for i in range(300):\n'
            '    sys.stdout.buffer.write(chunk)\n')
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        with self.assertRaises(OutputLimitExceeded) as cm:
            self._callFUT(argv)
        took = time.monotonic() - started
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        self.assertEqual(str(cm.exception),
                         'printed more than 64 KB on its standard output')
        # Generous bounds: reading 300 MB would take far longer and more.
        self.assertLess(took, 8)
        self.assertLess(grew, 50 * 1024)  # KB: 50 MB
        [pid] = self._pids()
        self.assertTrue(wait_until(lambda: not running(pid)))

    def test_its_error_output_is_capped_too(self):
        from zope.sendmail.smtp.helperprocess import OutputLimitExceeded
        with self.assertRaisesRegex(OutputLimitExceeded,
                                    'more than 1000 bytes on its standard'
                                    ' error'):
            self._callFUT(self._python(
                'while True:\n    sys.stderr.write("x" * 100)\n'),
                limit=1000)

    def test_a_child_left_holding_its_output_does_not_hold_us(self):
        # The helper exits at once; "sleep 60 &" keeps its stdout open.
        argv = self._shell('echo token\nsleep 60 &\necho $! > $PIDS\n')
        started = time.monotonic()
        done = self._callFUT(argv, timeout=30)
        took = time.monotonic() - started
        self.assertEqual((done.returncode, done.stdout), (0, b'token\n'))
        self.assertLess(took, 5)  # the grace is 0.5 s: not 30, nor 60
        # Attached to our pipe, unattended: killed with the group.
        [pid] = self._pids()
        self.assertTrue(wait_until(lambda: not running(pid)))

    def test_a_child_that_lets_go_of_its_output_is_left_alone(self):
        # A daemon the helper starts on purpose (an agent) detaches.
        argv = self._shell('echo token\nsleep 60 > /dev/null 2>&1 &\n'
                           'echo $! > $PIDS\n')
        done = self._callFUT(argv)
        self.assertEqual(done.stdout, b'token\n')
        [pid] = self._pids()
        self.assertTrue(running(pid))

    def test_timeout_kills_the_group_grandchildren_included(self):
        argv = self._python(
            'child = subprocess.Popen(["sleep", "60"])\n'
            'open(PIDS, "w").write(f"{os.getpid()} {child.pid}")\n'
            'time.sleep(60)\n')
        started = time.monotonic()
        with self.assertRaises(subprocess.TimeoutExpired):
            self._callFUT(argv, timeout=1)
        self.assertLess(time.monotonic() - started, 8)
        helper, grandchild = self._pids()
        self.assertTrue(wait_until(lambda: not running(helper)))
        self.assertTrue(wait_until(lambda: not running(grandchild)))

    def test_a_program_that_cannot_run(self):
        with self.assertRaises(FileNotFoundError):
            self._callFUT([os.path.join(self.tmp, 'missing')])
