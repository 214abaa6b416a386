"""Faults of a PostgreSQL queue shared by several hosts: each processor
runs in a network namespace of its own (a host), PostgreSQL and the SMTP
test server in a hub they reach over veth links; a host is cut off by
taking its link down (its packets are lost, nothing is refused).  A host
cut off for longer than the lease: its messages are sent by the others, at
most once more each, and when it comes back it changes nothing that is
another's; a processor cut off from the database stops within the time its
stop() is given.  Each test prints its figures.
"""
import json
import re
import sys
import time

from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.pgfaults import PostgresHostsTestCase


#: What a processor that lost claims says about them.
POSSIBLE_DUPLICATE = re.compile(
    r'may be sent twice|possible duplicate|claim\(s\) were lost')


class CutOffHostTests(PostgresHostsTestCase):

    LEASE = 4
    #: How long the host is cut off: well beyond its lease.
    CUT = LEASE + 5

    def test_a_host_cut_off_longer_than_its_lease(self):
        queue = self.new_queue()
        ids = self.fill(queue, 300)
        rows = self.message_ids(queue)
        self.server.delay = 0.02
        # (The program checks --lease-margin against --lease-timeout, for a
        # Maildir's processor lease, even on a URL.)
        options = ('--connections', 2, '--interval', 2,
                   '--lease-timeout', self.LEASE, '--lease-renew', 1,
                   '--lease-margin', 1, '--timeout', 5)
        hosts = [self.daemon(queue, f'host{i}', *options, host=i)
                 for i in range(3)]
        self.assertTrue(wait_until(
            lambda: self.leased(queue, self.holders('host2'))
            or hosts[2].poll() is not None, 30), self.stderr(hosts[2]))
        self.assertIsNone(hosts[2].poll(), self.stderr(hosts[2]))
        holders = self.holders('host2')
        self.layer.hosts.cut(2)
        cut = time.monotonic()
        self.addCleanup(self.layer.hosts.restore, 2)
        time.sleep(0.2)  # what was on its way has arrived
        held = self.leased(queue, holders)
        in_flight = {rows[row] for row in held}
        self.assertTrue(wait_until(lambda: not self.leased(queue, holders),
                                   self.CUT, 0.02),
                        'the others did not take its claims over')
        takeover = time.monotonic() - cut
        sent_meanwhile = self.received()
        taken_sent = len(in_flight & set(sent_meanwhile))
        time.sleep(max(0.0, cut + self.CUT - time.monotonic()))
        self.layer.hosts.restore(2)
        restored = time.monotonic()
        self.assertTrue(self.drained(queue, 90), f'{self.left(queue)} left')
        # Back on the network, the host finds its claims gone and says so.
        said = wait_until(lambda: POSSIBLE_DUPLICATE.search(
            self.stderr(hosts[2])), 30, 0.1) if held else False
        back = time.monotonic() - restored
        for host in hosts:
            self.assertEqual(self.terminate(host), 0, self.stderr(host))
        duplicates = self.check_sent_once(ids, [in_flight])
        counts = [sum(1 for line in self.stderr(host).splitlines()
                      if POSSIBLE_DUPLICATE.search(line)) for host in hosts]
        print(f'\n{self.id()}: {len(ids)} messages, 3 hosts, host2 cut off'
              f' for {self.CUT} s (lease {self.LEASE} s) holding'
              f' {len(held)} claim(s); taken over by the others in'
              f' {takeover:.2f} s, {taken_sent} of them sent while it was'
              f' cut off; {duplicates} duplicate(s), 0 lost; host2 logged'
              f' {counts[2]} possible-duplicate line(s)'
              f' ({back:.1f} s after it came back)', file=sys.stderr)
        self.assertGreater(len(held), 0)
        self.assertLess(takeover, self.CUT)
        self.assertTrue(said, self.stderr(hosts[2])[-3000:])


class StopWhileCutOffTests(PostgresHostsTestCase):

    STOP_TIMEOUT = 3.0

    def cut_off_and_stop(self, queue, child, name, rows, timeout):
        """Once *child* (processor *name*, on host 0) holds claims, cut its
        host off, let its statements and sends get stuck, and SIGTERM it;
        (the Message-Ids it held, by *rows*, the seconds it took to exit,
        its status).  The host is restored after."""
        self.assertTrue(wait_until(
            lambda: self.leased(queue, self.holders(name))
            or child.poll() is not None, 30), self.stderr(child))
        self.assertIsNone(child.poll(), self.stderr(child))
        holders = self.holders(name)
        self.layer.hosts.cut(0)
        self.addCleanup(self.layer.hosts.restore, 0)
        time.sleep(1.0)  # its statements and sends are now stuck
        in_flight = {rows[row] for row in self.leased(queue, holders)}
        start = time.monotonic()
        status = self.terminate(child, timeout=timeout)
        exited = time.monotonic() - start
        self.layer.hosts.restore(0)
        return in_flight, exited, status

    def finish(self, queue, ids, in_flight):
        """Let another host send the rest; check that nothing was lost and
        only *in_flight* sent twice; the number of duplicates."""
        other = self.daemon(queue, 'finisher', '--connections', 4,
                            '--interval', 1, host=1)
        self.server.delay = 0
        self.assertTrue(self.drained(queue, 60), f'{self.left(queue)} left')
        self.assertEqual(self.terminate(other), 0, self.stderr(other))
        return self.check_sent_once(ids, [in_flight])

    def test_stop_is_bounded_while_the_database_is_unreachable(self):
        queue = self.new_queue()
        ids = self.fill(queue, 60)
        rows = self.message_ids(queue)
        self.server.delay = 0.05
        child = self.spawn([
            '-m', 'zope.sendmail.functional.tests.processor_main',
            self.process_url(queue, 'stopper'), self.smtp_host,
            str(self.server.port), '--connections', 2, '--interval', 1,
            '--lease-timeout', 4, '--lease-renew', 1, '--lease-margin', 1,
            '--stop-timeout', self.STOP_TIMEOUT], host=0)
        in_flight, exited, status = self.cut_off_and_stop(
            queue, child, 'stopper', rows, self.STOP_TIMEOUT + 20)
        said = json.loads(child.stdout.read().decode() or '{}')
        self.assertIn('seconds', said, self.stderr(child))
        duplicates = self.finish(queue, ids, in_flight)
        print(f'\n{self.id()}: {len(ids)} messages, the processor cut off'
              f' from the database and the relay holding'
              f' {len(in_flight)} claim(s): stop({self.STOP_TIMEOUT:g})'
              f' returned {said["stopped"]} after {said["seconds"]:.2f} s,'
              f' the process exited {exited:.2f} s after SIGTERM;'
              f' {duplicates} duplicate(s), 0 lost', file=sys.stderr)
        self.assertLess(said['seconds'], self.STOP_TIMEOUT + 1)

    def test_the_program_stops_while_the_database_is_unreachable(self):
        # zope-sendmail --daemon waits for the messages being sent; cut
        # off, what it waits for must end on its own, in bounded time.
        queue = self.new_queue()
        ids = self.fill(queue, 60)
        rows = self.message_ids(queue)
        self.server.delay = 0.05
        child = self.daemon(queue, 'program', '--connections', 2,
                            '--interval', 1, '--lease-timeout', 4,
                            '--lease-renew', 1, '--lease-margin', 1,
                            '--timeout', 5, host=0)
        in_flight, exited, status = self.cut_off_and_stop(
            queue, child, 'program', rows, 90)
        self.assertEqual(status, 0, self.stderr(child))
        duplicates = self.finish(queue, ids, in_flight)
        print(f'\n{self.id()}: {len(ids)} messages, zope-sendmail cut off'
              f' holding {len(in_flight)} claim(s) exited {exited:.2f} s'
              f' after SIGTERM (status {status}); {duplicates}'
              f' duplicate(s), 0 lost', file=sys.stderr)
        # What it waits for ends within the connections' bounds: the SMTP
        # timeout, the keepalives and the TCP user timeout.
        self.assertLess(exited, 40)
