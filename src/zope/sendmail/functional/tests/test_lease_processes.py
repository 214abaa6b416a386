"""The processor lease between processes, on a local directory with the
lease forced on (``--lease on``) and short bounds.

Each processor is a child process (`processor_main`); the test plays the
other holders by writing the lease file itself.  Every message must go out
exactly once, and only from the holder of the lease.
"""
import collections
import os
import shutil
import signal
import subprocess
import sys
import time

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.lease import write_lease
from zope.sendmail.tests.support.processes import ProcessTestBase


# Takeover after 3 s unchanged; a holder that cannot renew stops sending
# (3 - 0.6) / 2 = 1.2 s after its last renewal began.
LEASE = ('--lease', 'on', '--lease-timeout', 3, '--lease-renew', 0.1,
         '--lease-margin', 0.6, '--interval', 0.1)
WAIT = 60  # the bound of every wait below, never reached when all is well


def _killpg(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # gone already


class LeaseProcessTests(ProcessTestBase):

    def setUp(self):
        super().setUp()
        from zope.sendmail.stores.maildir.folder import Maildir
        Maildir(self.queue, create=True)

    def holder(self):
        from zope.sendmail.stores.maildir.leasefile import read_lease
        return read_lease(self.queue) or {}

    def wait_for_holder(self, child):
        self.assertTrue(wait_until(
            lambda: self.holder().get('pid') == str(child.pid), WAIT),
            self.stderr(child))

    def wait_for_mail(self, count, child):
        self.assertTrue(wait_until(
            lambda: len(self.server.messages) >= count, WAIT),
            f'{len(self.server.messages)} of {count} sent:\n'
            f'{self.stderr(child)}')

    def assertOnce(self, ids):
        self.assertEqual(self.received(), collections.Counter(ids))

    def test_takeover_only_after_the_bound(self):
        write_lease(self.queue, timeout='3')  # a holder that never renews
        ids = self.fill(5)
        started = time.monotonic()
        child = self.processor(*LEASE)
        self.wait_for_mail(5, child)
        self.assertGreaterEqual(time.monotonic() - started, 3.0)
        self.assertIn('took over the processor lease of elsewhere pid 7',
                      self.stderr(child))
        self.assertTrue(wait_until(lambda: self.listing()[0] == [], WAIT))
        self.assertOnce(ids)
        self.wait_for_holder(child)

    def test_standby_takes_over_from_a_sigkilled_holder(self):
        first = self.processor(*LEASE)
        self.wait_for_holder(first)
        second = self.processor(*LEASE)
        ids = self.fill(10)
        self.wait_for_mail(10, first)
        # Killed mid-send, a message would go twice: that is a claim's
        # business (test_processes), not the lease's.
        self.assertTrue(wait_until(lambda: self.listing()[0] == [], WAIT))
        first.send_signal(signal.SIGKILL)
        first.wait(WAIT)
        ids += self.fill(10)
        # Killed on this host: its pid is gone, so no bound to wait for.
        self.wait_for_mail(20, second)
        self.wait_for_holder(second)
        self.assertIn('took over the processor lease of', self.stderr(second))
        self.assertIn(f'pid {first.pid}', self.stderr(second))
        self.assertTrue(wait_until(lambda: self.listing()[0] == [], WAIT))
        self.assertOnce(ids)

    def test_sigkilled_holder_elsewhere_is_replaced_after_the_bound(self):
        # A holder in another pid namespace is not provably dead to us (as
        # one on another host): its standby waits for the bound.
        if shutil.which('unshare') is None or subprocess.run(
                ['unshare', '--pid', '--fork', 'true'],
                stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest('cannot make a pid namespace (unshare, as root)')
        args = ['-m', 'zope.sendmail.functional.tests.processor_main',
                self.queue,
                self.server.host, str(self.server.port), *map(str, LEASE)]
        errpath = os.path.join(self.tmp, 'namespaced.stderr')
        with open(errpath, 'wb') as err:
            holder = subprocess.Popen(
                ['unshare', '--pid', '--fork', sys.executable, *args],
                env=child_env(), stdin=subprocess.DEVNULL, stderr=err,
                stdout=subprocess.DEVNULL, cwd=self.tmp,
                start_new_session=True)
        self.addCleanup(holder.wait, WAIT)
        self.addCleanup(_killpg, holder.pid)
        self.assertTrue(wait_until(lambda: self.holder().get('pid') == '1',
                                   WAIT), errpath)
        standby = self.processor(*LEASE)
        _killpg(holder.pid)
        killed = time.monotonic()
        ids = self.fill(3)
        self.wait_for_mail(3, standby)
        self.assertGreaterEqual(time.monotonic() - killed, 2.5)
        self.assertIn('took over the processor lease of', self.stderr(standby))
        self.assertOnce(ids)

    def test_holder_that_loses_its_lease_stops_sending(self):
        child = self.processor(*LEASE)
        self.wait_for_holder(child)
        write_lease(self.queue, host='thief', pid='99', timeout='3')
        self.assertTrue(wait_until(
            lambda: 'lost the processor lease to thief pid 99' in
            self.stderr(child), WAIT), self.stderr(child))
        lost_at = time.monotonic()
        ids = self.fill(5)
        # The thief never renews: after the bound the child takes the
        # lease back, and only then sends.
        self.wait_for_mail(5, child)
        self.assertGreaterEqual(time.monotonic() - lost_at, 2.5)
        self.assertIn('took over the processor lease of thief pid 99',
                      self.stderr(child))
        self.assertTrue(wait_until(lambda: self.listing()[0] == [], WAIT))
        self.assertOnce(ids)

    def test_clean_stop_hands_over_at_once(self):
        first = self.processor(*LEASE)
        self.wait_for_holder(first)
        second = self.processor(*LEASE)
        first.send_signal(signal.SIGTERM)
        self.assertEqual(first.wait(WAIT), 0, self.stderr(first))
        self.wait_for_holder(second)
        self.assertNotIn('took over', self.stderr(second))
        ids = self.fill(3)
        self.wait_for_mail(3, second)
        self.assertOnce(ids)
        self.assertEqual([n for n in os.listdir(self.queue)
                          if n.startswith('.processor-lease.')], [])

    def zope_sendmail(self, *args):
        from zope.sendmail.console.program import ConsoleApp
        return ConsoleApp(
            ['zope-sendmail', '--hostname', self.server.host, '--port',
             str(self.server.port), '-q', *map(str, LEASE[:-2]), *args,
             self.queue], verbose=False).main()

    def test_one_shot_run_beside_a_live_holder_sends_nothing(self):
        child = self.processor(*LEASE)
        self.wait_for_holder(child)
        os.kill(child.pid, signal.SIGSTOP)  # it holds, and sends nothing
        self.addCleanup(os.kill, child.pid, signal.SIGCONT)
        self.fill(2)
        os.kill(child.pid, signal.SIGCONT)
        started = time.monotonic()
        # It sees the holder renew and leaves at once; the holder sends.
        status = self.zope_sendmail()
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertEqual(status, 75)
        self.wait_for_mail(2, child)
        self.assertEqual(self.holder().get('pid'), str(child.pid))

    def test_one_shot_run_takes_a_free_lease_and_releases_it(self):
        ids = self.fill(3)
        self.assertEqual(self.zope_sendmail(), 0)
        self.assertOnce(ids)
        self.assertEqual(self.holder(), {})
