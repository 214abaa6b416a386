"""One shared queue on NFSv3 with NLM locks: a dead holder's claims.

An NFSv3 client that dies holding NLM locks never gives them back: the
server keeps them until the client reboots and says so (NSM), which a
crashed or retired host never does.  So a lock held for good must not hold
a message for good: on a network file system a claim older than the lease
bound is broken even if its lock is still held.  Two guests run
``zope-sendmail --daemon`` on the layer's export mounted over NFSv3 with
locks (a portmapper and status monitor in each guest and beside the
server); see test_nfs_lease.py for the set-up, test_nfs_layer.py for
the lock that is never released.

- The holder crashes while it holds claims: the standby takes over after
  the bound and sends every message, once: none is stuck for good.
"""
import time

from zope.sendmail.functional.tests.nfs_support import LEASE
from zope.sendmail.functional.tests.nfs_support import ProcessorTestCase


T = LEASE['timeout']


class NLMTests(ProcessorTestCase):

    def test_no_message_stuck_behind_a_dead_holders_nlm_locks(self):
        holder = self.processor(0, 'v3-nlm')
        self.wait_for(lambda: self.lease_holder() == 'guest0', 60,
                      'guest0 holding the lease')
        self.assertNotIn('nolock', holder.read('mounted'))
        self.processor(1, 'v3-nlm')
        ids = self.catch_holder_claiming(3)
        renewed = self.lease_renewed()
        crashed = time.time()
        holder.crash()
        self.lab.sink.stall = False
        self.wait_sent(ids, 3 * T + 60, 'sent by the standby')
        received = self.received()
        last = max(at for i in ids for _, at in received[i])
        first = self.first_send('guest1', ids)
        self.note(f'the standby sent the first message'
                  f' {first - crashed:.1f} s and the last'
                  f' {last - crashed:.1f} s after the crash'
                  f' ({crashed - renewed:.1f} s after the last renewal)')
        self.assertGreaterEqual(first - renewed, T - 1)
        self.wait_for(self.queue_empty, 30, 'the queue empty')
        self.assertSentOnce(ids)
        self.note(f'sends per message: {self.counts()}; none stuck')
        self.assertEqual(self.senders(ids), ['guest1'])
