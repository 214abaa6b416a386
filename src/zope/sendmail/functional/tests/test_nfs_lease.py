"""One shared queue on NFSv4.1, two hosts: the processor lease at work.

Two User-Mode-Linux guests (two hosts, two NFS clients; see
`zope.sendmail.testserver.nfs`) run ``zope-sendmail --daemon`` on one
queue on the layer's nfs-ganesha export (NFSv4 lease 10 s), with the
processor lease of `nfs_support.LEASE` (takeover bound T = 30 s).  The
host queues the mail and counts, per Message-Id, what reached the SMTP
sink and from which guest.  The holder is caught holding claims: the sink
stalls its greeting, so the holder has claimed messages and sent none.

- A holder cut off from the network for longer than the NFS lease (and
  than T) loses nothing and duplicates nothing: the standby takes over
  after T, sends every message once, and the old holder, back on the
  network, sends none again.
- A crashed holder is replaced only after T without renewal, and the
  messages it had claimed are sent (none stuck), once.
"""
import time

from zope.sendmail.functional.tests.nfs_support import LEASE
from zope.sendmail.functional.tests.nfs_support import ProcessorTestCase


T = LEASE['timeout']


class LeaseTests(ProcessorTestCase):

    def start_holder_and_standby(self):
        """guest0 holding the lease, guest1 its standby; both idle."""
        holder = self.processor(0)
        self.wait_for(lambda: self.lease_holder() == 'guest0', 60,
                      'guest0 holding the lease')
        standby = self.processor(1)
        ids = self.deliver(3)
        self.wait_sent(ids, 30, 'the first messages')
        self.assertEqual({s[0][0] for s in self.received().values()},
                         {'guest0'})
        return holder, standby, ids

    def test_cut_longer_than_the_lease_sends_each_message_once(self):
        _, _, first = self.start_holder_and_standby()
        ids = self.catch_holder_claiming(5)
        renewed = self.lease_renewed()
        cut = time.time()
        self.lab.cut(0)
        self.lab.sink.stall = False
        self.wait_sent(ids, T + 60, 'sent by the standby during the cut')
        took_over = self.first_send('guest1', ids)
        # Longer than the NFS lease, and than T: the standby sent it all.
        self.settle(max(0, cut + self.lab.lease + 5 - time.time()))
        restored = time.time()
        self.lab.restore(0)
        self.note(f'cut for {restored - cut:.0f} s (NFS lease'
                  f' {self.lab.lease} s); the standby sent its first'
                  f' message {took_over - cut:.1f} s after the cut,'
                  f' {took_over - renewed:.1f} s after the last renewal')
        # The old holder is back: it must send nothing again.
        self.settle(4 * LEASE['renew'] + 10)
        self.wait_for(self.queue_empty, 30, 'the queue empty')
        self.assertSentOnce(first + ids)
        self.note(f'sends per message: {self.counts()};'
                  f' senders {self.senders(ids)}')
        self.assertEqual(self.senders(ids), ['guest1'])
        self.assertGreaterEqual(took_over - renewed, T - 1)
        self.assertEqual(self.lease_holder(), 'guest1')

    def test_crashed_holder_is_replaced_only_after_the_bound(self):
        holder, _, first = self.start_holder_and_standby()
        ids = self.catch_holder_claiming(4)
        renewed = self.lease_renewed()
        crashed = time.time()
        holder.crash()
        self.lab.sink.stall = False
        self.wait_sent(ids, T + 60, 'sent by the standby')
        took_over = self.first_send('guest1', ids)
        self.note(f'the standby sent its first message'
                  f' {took_over - crashed:.1f} s after the crash,'
                  f' {took_over - renewed:.1f} s after the last renewal'
                  f' (bound {T} s)')
        self.assertGreaterEqual(took_over - renewed, T - 1)
        self.wait_for(self.queue_empty, 30, 'the queue empty')
        self.assertSentOnce(first + ids)
        self.note(f'sends per message: {self.counts()}; none stuck')
        self.assertEqual(self.senders(ids), ['guest1'])
