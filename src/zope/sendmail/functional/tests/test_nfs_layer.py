"""The NFS layer itself: its guests are independent NFS clients, and its
faults do to a lock what they would do between real hosts.

These tests are the ground the NFS scenario tests stand on: two guests
see each other's files at once, but are two clients (two boot ids); an
flock taken by one excludes the other; a crashed client's lock is freed
only after the NFS lease; and a client cut off for longer than the lease
loses its lock silently, while it still believes it holds it: the reason
why, on NFS, a lock alone is no proof that its holder is gone.  The
layer's lease is `NFSLab.lease <zope.sendmail.testserver.nfs.NFSLab>`
seconds.  Skipped, saying why, where the layer cannot run.
"""
import os
import time

from zope.sendmail.functional.tests import nfs_probe
from zope.sendmail.functional.tests.nfs_support import NFSTestCase


PROBE = nfs_probe.__file__


class LayerTests(NFSTestCase):

    def lock_holder(self):
        """Boot guest0 holding an flock on /run/q/lock; once it holds."""
        holder = self.lab.guest(0, self.python(
            PROBE, 'hold', '/run/q/lock', '/run/q/held'))
        self.wait_for(lambda: holder.read('mounted'), 60, 'guest0 mounted')
        self.wait_for(lambda: self.queue_exists('held'), 30, 'lock held')
        return holder

    def queue_exists(self, name):
        return os.path.exists(self.queue_file(name))

    def lock_taker(self, timeout):
        """Boot guest1 trying the lock for *timeout* s; once it tried."""
        taker = self.lab.guest(1, self.python(
            PROBE, 'take', '/run/q/lock', '/run/q/tried', timeout))
        self.wait_for(lambda: self.queue_exists('tried'), 60,
                      'guest1 found the lock busy')
        return taker

    def test_two_separate_clients_on_one_export(self):
        program = ('cat /proc/sys/kernel/random/boot_id\n'
                   'touch /run/q/$GUEST_NAME\n'
                   'for i in $(seq 100); do ls /run/q | grep -q "^$OTHER$"'
                   ' && echo saw $OTHER && break; sleep 0.1; done\n')
        guests = [self.lab.guest(i, program, env=dict(OTHER=f'guest{1 - i}'))
                  for i in (0, 1)]
        lines = [g.wait_done(60) == 0 and g.read('output').split()
                 for g in guests]
        self.assertEqual([line[1:] for line in lines],
                         [['saw', 'guest1'], ['saw', 'guest0']])
        self.assertNotEqual(lines[0][0], lines[1][0])  # two kernels
        self.assertIn(' nfs4 ', guests[0].read('mounted'))

    def test_crashed_holder_is_freed_after_the_nfs_lease(self):
        holder = self.lock_holder()
        taker = self.lock_taker(timeout=6 * self.lab.lease)
        crashed = time.time()
        holder.crash()
        taker.wait_done(8 * self.lab.lease)
        [result] = self.events(taker)
        self.assertEqual((result['event'], result['first']),
                         ('acquired', 'busy'))
        freed = result['at'] - crashed
        self.note(f'lock of the crashed client freed after {freed:.1f} s'
                  f' (NFS lease {self.lab.lease} s)')
        self.assertGreater(freed, self.lab.lease / 2)

    def test_cut_off_holder_loses_its_lock_silently(self):
        holder = self.lock_holder()
        taker = self.lock_taker(timeout=6 * self.lab.lease)
        cut = time.time()
        self.lab.cut(0)
        taker.wait_done(8 * self.lab.lease)
        restored = time.time()
        self.lab.restore(0)
        [result] = self.events(taker)
        self.assertEqual((result['event'], result['first']),
                         ('acquired', 'busy'))
        self.note(f'a cut-off client\'s lock taken by the other after'
                  f' {result["at"] - cut:.1f} s of the cut')
        self.assertLess(result['at'], restored)
        # The holder learns only later that it lost the lock, if at all.
        self.wait_for(lambda: len(self.events(holder)) > 1
                      or time.time() > restored + 3 * self.lab.lease,
                      5 * self.lab.lease, 'the holder going on')
        self.note(f'the cut-off holder then saw: {self.events(holder)[1:]}')
