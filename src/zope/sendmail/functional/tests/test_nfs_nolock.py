"""One shared queue on NFSv3 mounted ``nolock``: no duplicate, none stuck.

With ``nolock`` (``local_lock=all``) every client's locks are its own: an
flock taken on one host is invisible on the other, so the claims of this
package exclude nothing between hosts.  The queue processor sees the mount
option (`zope.sendmail.stores.maildir.netfs`) and sends only while it holds the
processor lease, whose protocol needs no lock.  Two guests run
``zope-sendmail --daemon`` on the layer's export mounted so (see
test_nfs_lease.py for the set-up, `nfs_support.LEASE` for the lease).

- Both running: each message is sent once, all by the lease holder.
- The holder crashes while it holds claims (their locks die with it, on
  its side only): the standby takes over after the bound and sends every
  message, once: none is stuck for good behind a dead holder's claim.
"""
import time

from zope.sendmail.functional.tests.nfs_support import LEASE
from zope.sendmail.functional.tests.nfs_support import ProcessorTestCase


T = LEASE['timeout']


class NolockTests(ProcessorTestCase):

    def start_both(self):
        holder = self.processor(0, 'v3-nolock')
        self.wait_for(lambda: self.lease_holder() == 'guest0', 60,
                      'guest0 holding the lease')
        self.assertIn('nolock', holder.read('mounted'))
        return holder, self.processor(1, 'v3-nolock')

    def test_nolock_sends_each_message_once(self):
        self.start_both()
        # Slow replies: a pass is long enough for the standby to try.
        self.lab.sink.delay = 0.1
        ids = self.deliver(12)
        self.wait_sent(ids, 60)
        self.wait_for(self.queue_empty, 30, 'the queue empty')
        self.settle(2 * LEASE['renew'])
        self.assertSentOnce(ids)
        senders = self.senders(ids)
        self.note(f'sends per message: {self.counts()}; senders {senders}')
        self.assertEqual(senders, ['guest0'])

    def test_no_message_stuck_behind_a_crashed_holder(self):
        holder, _ = self.start_both()
        ids = self.catch_holder_claiming(4)
        renewed = self.lease_renewed()
        crashed = time.time()
        holder.crash()
        self.lab.sink.stall = False
        self.wait_sent(ids, 2 * T + 60, 'sent by the standby')
        received = self.received()
        last = max(at for i in ids for _, at in received[i])
        self.note(f'the standby sent the first message'
                  f' {self.first_send("guest1", ids) - crashed:.1f} s and'
                  f' the last {last - crashed:.1f} s after the crash'
                  f' ({crashed - renewed:.1f} s after the last renewal)')
        self.assertGreaterEqual(self.first_send('guest1', ids) - renewed,
                                T - 1)
        self.wait_for(self.queue_empty, 30, 'the queue empty')
        self.assertSentOnce(ids)
        self.note(f'sends per message: {self.counts()}; none stuck')
        self.assertEqual(self.senders(ids), ['guest1'])
