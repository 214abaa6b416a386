"""Tests of the processor lease on a real directory, one lease object (or
a few) at a time; clocks are given, so no test waits for a bound."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.lease import write_lease


class Clock:

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class LeaseTests(unittest.TestCase):

    def setUp(self):
        self.queue = tempfile.mkdtemp(prefix='zope.sendmail-lease-')
        self.addCleanup(shutil.rmtree, self.queue, True)
        self.log = InstalledHandler('zope.sendmail.stores.maildir.lease')
        self.addCleanup(self.log.uninstall)
        self.clock = Clock()

    def lease(self, clock=None, **kw):
        from zope.sendmail.stores.maildir.lease import ProcessorLease
        settings = dict(timeout=10.0, renew=1.0, margin=2.0)
        settings.update(kw)
        lease = ProcessorLease(self.queue, clock=clock or self.clock,
                               **settings)
        self.addCleanup(lease.stop, 10)
        return lease

    def fields(self):
        from zope.sendmail.stores.maildir.leasefile import read_lease
        return read_lease(self.queue)

    def test_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IProcessorLease
        self.assertTrue(verifyObject(IProcessorLease, self.lease()))

    def test_a_link_in_place_of_the_lease_file_is_never_read(self):
        from zope.sendmail.stores.maildir.leasefile import LEASE
        from zope.sendmail.stores.maildir.leasefile import describe_lease
        secret = os.path.join(self.queue, 'secret')
        with open(secret, 'w') as f:
            f.write('host: SECRET-4242\n')
        os.symlink(secret, os.path.join(self.queue, LEASE))
        lease = self.lease()
        for i in range(3):
            self.assertFalse(lease.acquire())
        [record] = self.log.records
        self.assertIn('cannot look at the processor lease: ', record.msg
                      % record.args)
        self.assertIn('is a symbolic link, not a regular file',
                      record.getMessage())
        self.assertNotIn('SECRET', str(self.log))
        self.assertEqual(self.fields(), {})
        self.assertEqual(describe_lease(self.fields(), time.time()),
                         'held by ? pid ? (unreadable lease file)')

    def test_settings_checked(self):
        from zope.sendmail.stores.maildir.leasefile import check_settings
        check_settings(120, 10, 20)
        for timeout, renew, margin in ((10, 1, 10), (10, 4, 2), (10, 0, 2),
                                       (10, 1, -1)):
            with self.assertRaises(ValueError):
                check_settings(timeout, renew, margin)

    def test_first_acquires_the_others_wait_and_log_once(self):
        first, second = self.lease(), self.lease()
        self.assertTrue(first.acquire())
        self.assertTrue(first.may_send())
        fields = self.fields()
        self.assertEqual((fields['token'], fields['pid'], fields['serial']),
                         (first.token, str(os.getpid()), '1'))
        self.assertEqual(os.stat(first.path).st_mode & 0o777, 0o600)
        self.assertFalse(second.acquire())
        self.assertFalse(second.acquire())
        self.assertFalse(second.may_send())
        self.assertEqual(str(self.log).count('waiting as a standby'), 1)
        self.assertEqual(sorted(os.listdir(self.queue)), ['.processor-lease'])

    def test_takeover_after_the_bound_only(self):
        holder_clock = Clock()
        holder, standby = self.lease(holder_clock), self.lease()
        self.assertTrue(holder.acquire())
        self.assertFalse(standby.acquire())
        holder_clock.now = self.clock.now = 1009.0
        self.assertFalse(standby.acquire())
        # The holder could not renew: it stopped sending long before.
        self.assertFalse(holder.may_send())
        self.clock.now = 1010.0
        self.assertTrue(standby.acquire())
        self.assertEqual(self.fields()['token'], standby.token)
        self.assertIn('took over the processor lease', str(self.log))
        holder_clock.now = 1011.0
        self.assertFalse(holder.renew_once())
        self.assertIn('could not renew the processor lease', str(self.log))

    def test_holder_fences_itself(self):
        # V = (timeout - margin) / 2 = 4 s after the start of the renewal.
        holder = self.lease()
        holder.acquire()
        self.clock.now = 1003.9
        self.assertTrue(holder.may_send())
        self.assertTrue(holder.renew_once())
        self.clock.now = 1007.8
        self.assertTrue(holder.may_send())
        self.clock.now = 1007.9
        self.assertFalse(holder.may_send())

    def test_renewal_seen_resets_the_wait(self):
        holder, standby = self.lease(Clock()), self.lease()
        holder.acquire()
        standby.acquire()
        self.clock.now = 1008.0
        holder.renew_once()
        self.assertFalse(standby.acquire())
        self.assertTrue(standby.seen_renewal)
        self.clock.now = 1017.0
        self.assertFalse(standby.acquire())
        self.clock.now = 1018.0
        self.assertTrue(standby.acquire())

    def test_the_holders_longer_bound_is_kept(self):
        write_lease(self.queue, timeout='120')
        standby = self.lease()
        standby.acquire()
        self.clock.now += 119
        self.assertFalse(standby.acquire())
        self.clock.now += 1
        self.assertTrue(standby.acquire())

    def test_one_of_two_standbys_takes_over(self):
        write_lease(self.queue, timeout='10')
        standbys = [self.lease(), self.lease()]
        self.assertEqual([s.acquire() for s in standbys], [False, False])
        self.clock.now += 10
        self.assertEqual([s.acquire() for s in standbys], [True, False])
        self.assertEqual(len([n for n in os.listdir(self.queue)
                              if '.taken-' in n]), 1)

    def test_lost_to_another_token(self):
        holder = self.lease()
        holder.acquire()
        write_lease(self.queue, host='thief', pid='99')
        self.assertFalse(holder.renew_once())
        self.assertFalse(holder.may_send())
        self.assertIn('lost the processor lease to thief pid 99',
                      str(self.log))
        self.assertFalse(holder.acquire())

    def test_dead_holder_on_this_host_at_once(self):
        from zope.sendmail.stores.maildir.leasefile import identity
        me = identity()
        child = subprocess.Popen([sys.executable, '-c', 'pass'])
        child.wait(10)
        write_lease(self.queue, host=me['host'], boot_id=me['boot_id'],
                    pidns=me['pidns'], pid=str(child.pid))
        self.assertTrue(self.lease().acquire())
        self.assertIn(f'of {me["host"]} pid {child.pid}', str(self.log))

    def test_same_host_name_another_boot_waits(self):
        # Before a reboot, or a cloned VM of the same name: not provably
        # dead, so the bound applies.
        from zope.sendmail.stores.maildir.leasefile import identity
        me = identity()
        write_lease(self.queue, host=me['host'], boot_id='another',
                    pidns=me['pidns'], pid='999999999')
        self.assertFalse(self.lease().acquire())

    def test_live_holder_on_this_host_or_another_host_waits(self):
        from zope.sendmail.stores.maildir.leasefile import identity
        me = identity()
        write_lease(self.queue, host=me['host'], boot_id=me['boot_id'],
                    pidns=me['pidns'], pid=str(os.getpid()))
        self.assertFalse(self.lease().acquire())
        write_lease(self.queue, pid='999999999')  # on another host
        self.assertFalse(self.lease().acquire())

    def test_trouble_with_the_file_is_logged_once(self):
        lease = self.lease()
        os.rmdir(self.queue)  # the file server's export went away, say
        self.assertEqual([lease.acquire(), lease.acquire()], [False, False])
        self.assertEqual(str(self.log).count('cannot look at the'), 1)
        os.mkdir(self.queue)
        self.assertTrue(lease.acquire())

    def test_stop_releases_only_its_own(self):
        holder, standby = self.lease(), self.lease()
        holder.acquire()
        holder.stop()
        self.assertIsNone(self.fields())
        self.assertTrue(standby.acquire())
        self.assertIn('processor lease released', str(self.log))
        write_lease(self.queue)
        standby.stop()
        self.assertEqual(self.fields()['token'], 'theirs')

    def test_heartbeat_renews_and_a_standby_takes_over(self):
        from zope.sendmail.stores.maildir.lease import ProcessorLease
        holder = ProcessorLease(self.queue, timeout=1.0, renew=0.05,
                                margin=0.2)
        self.addCleanup(holder.stop, 10)
        acquired = []
        holder.on_acquire = lambda: acquired.append(True)
        holder.start()
        self.assertTrue(wait_until(lambda: holder.may_send(), 10))
        self.assertEqual(acquired, [True])
        self.assertTrue(wait_until(
            lambda: int(self.fields()['serial']) >= 3, 10))
        standby = ProcessorLease(self.queue, timeout=1.0, renew=0.05,
                                 margin=0.2)
        self.addCleanup(standby.stop, 10)
        standby.start()
        self.assertTrue(wait_until(lambda: standby.seen_renewal, 10))
        holder.stop(10)
        self.assertTrue(wait_until(lambda: standby.may_send(), 10))
        self.assertFalse(holder.may_send())
