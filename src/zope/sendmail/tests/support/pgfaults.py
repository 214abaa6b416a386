"""Processors of a PostgreSQL queue in processes of their own, and the
faults the PostgreSQL fault tests make them meet.

`PostgresProcessesTestBase` runs ``zope-sendmail --daemon`` processes on a
queue of the layer's cluster, relaying to an SMTP test server of this
process, fills the queue in real transactions of this process, and reads
back what the server received and what the queue's rows say: which rows a
processor holds (each process is told apart by the ``application_name``
its URL gives its connections, and its claims by its holder's advisory
lock).  `PostgresHostsLayer` is a cluster and an SMTP test server on a
private network of three "hosts" (`zope.sendmail.testserver.netns.Hosts`)
any of which a test can cut off; `PostgresHostsTestCase` runs processors
on those hosts.  Every wait is bounded; every process is killed and
reaped after its test, and the layer removes its network and cluster.
"""
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import transaction

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresTestCase
from zope.sendmail.tests.support.processes import message_id
from zope.sendmail.tests.support.processes import send_numbered
from zope.sendmail.testserver import SMTPTestServer
from zope.sendmail.testserver.netns import Hosts
from zope.sendmail.testserver.netns import NetworkUnavailable
from zope.sendmail.testserver.netns import netns_unavailable
from zope.sendmail.testserver.postgres import ClusterError
from zope.sendmail.testserver.postgres import PostgresCluster
from zope.sendmail.testserver.postgres import postgres_unavailable


TABLE = 'zope_sendmail_queue'

# The holder ids of the processors whose connections are named %s: each
# holds a session advisory lock on its id (a bigint key: classid the high
# 32 bits, objid the low ones).
HOLDERS = """
    SELECT (l.classid::bigint << 32) | l.objid::bigint
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
      AND a.application_name = %s"""


class PostgresProcessesTestBase(PostgresTestCase):
    """Processors in child processes on queues of the layer's cluster; see
    the module.  A test names its queues (`new_queue`) and its processes
    (`daemon`'s *name*)."""

    #: Where the processes reach the SMTP server.
    smtp_host = '127.0.0.1'

    def setUp(self):
        super().setUp()  # skipped where PostgreSQL cannot run
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-pgfaults-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = self.start_server()
        self.children = 0
        self._queues = 0

    def start_server(self):
        server = SMTPTestServer().start()
        self.addCleanup(server.stop)
        return server

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        transaction.abort()
        super().tearDown()

    # URLs

    def new_queue(self):
        """A queue name of its own for this test."""
        self._queues += 1
        return f'{self.id().rsplit(".", 1)[-1][:40]}-{self._queues}'

    def url(self, queue):
        """The URL this process reaches *queue* by."""
        return self.layer.url(queue)

    def process_url(self, queue, name):
        """The URL the process *name* reaches *queue* by."""
        return self.layer.url(queue, application_name=name)

    # Processes

    def spawn(self, args, host=None):
        """Start ``python args...`` (on host *host* of the layer's network,
        if given); it is killed and reaped after the test, its stderr kept
        for `stderr`."""
        self.children += 1
        errpath = os.path.join(self.tmp, f'child-{self.children}.stderr')
        command = [sys.executable, *map(str, args)]
        if host is not None:
            command = self.layer.hosts.command(host, *command)
        with open(errpath, 'wb') as err:
            child = subprocess.Popen(
                command, env=child_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err, cwd=self.tmp)
        child.errpath = errpath
        self.addCleanup(self.reap, child)
        return child

    def reap(self, child):
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdout.close()

    def stderr(self, child):
        with open(child.errpath, encoding='utf-8', errors='replace') as f:
            return f.read()

    def daemon(self, queue, name, *options, host=None):
        """``zope-sendmail --daemon`` on *queue*, its connections named
        *name*, sending to the test server (no TLS) with *options*."""
        args = ['-m', 'zope.sendmail.console', '--daemon',
                self.process_url(queue, name),
                '--hostname', self.smtp_host, '--port', str(self.server.port),
                '--no-tls', '--timeout', '10']
        return self.spawn(args + list(options), host)

    def terminate(self, child, timeout=30):
        """SIGTERM *child*; its exit status (the test fails if it does not
        exit within *timeout* seconds)."""
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
            self.fail(f'SIGTERM did not stop the processor within {timeout}'
                      f' s:\n{self.stderr(child)[-3000:]}')

    # The queue

    def fill(self, queue, count, per_transaction=100):
        """Queue *count* messages, each with a known Message-Id, in
        transactions of *per_transaction*; return their Message-Ids."""
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.url(queue))
        self.addCleanup(delivery.store.close)
        return send_numbered(delivery, count, per_transaction, queue,
                             'pgfaults.test')

    def psql(self, sql, params=None):
        return self.layer.psql(sql, params)

    def message_ids(self, queue):
        """{row id: Message-Id} of the rows of *queue*."""
        return dict(self.psql(f'SELECT id, message_id FROM {TABLE}'
                              f' WHERE queue = %s', (queue,)))

    def left(self, queue):
        """How many rows *queue* holds."""
        return self.psql(f'SELECT count(*) FROM {TABLE} WHERE queue = %s',
                         (queue,))[0][0]

    def holders(self, name):
        """The holder ids of the processes named *name* (alive)."""
        return [row[0] for row in self.psql(HOLDERS, (name,))]

    def leased(self, queue, holders=None):
        """The rows of *queue* claimed (by *holders*, or by anyone)."""
        if holders is None:
            rows = self.psql(f'SELECT id FROM {TABLE} WHERE queue = %s'
                             f' AND lease_token IS NOT NULL', (queue,))
        else:
            rows = self.psql(f'SELECT id FROM {TABLE} WHERE queue = %s'
                             f' AND lease_token IS NOT NULL'
                             f' AND lease_holder = ANY(%s)',
                             (queue, list(holders)))
        return {row[0] for row in rows}

    def drained(self, queue, timeout):
        """Whether *queue* is empty within *timeout* seconds."""
        return wait_until(lambda: self.left(queue) == 0, timeout, 0.1)

    def received(self):
        """The multiset of Message-Ids the server accepted."""
        return collections.Counter(message_id(m.data)
                                   for m in self.server.messages)

    def wait_received(self, mid, timeout):
        """Seconds until the server received *mid* (None: not within
        *timeout*)."""
        start = time.monotonic()
        if wait_until(lambda: mid in self.received(), timeout, 0.005):
            return time.monotonic() - start
        return None

    def check_sent_once(self, ids, in_flight):
        """Fail unless every message of *ids* was received, nothing else
        was, and a message was received more than once only as often as
        it was in flight (*in_flight*: a list of sets of Message-Ids, one
        per fault).  Return the number of duplicates."""
        received = self.received()
        lost = set(ids) - set(received)
        self.assertEqual(lost, set(), f'{len(lost)} message(s) lost')
        self.assertEqual(set(received) - set(ids), set())
        for mid, count in received.items():
            allowed = 1 + sum(mid in s for s in in_flight)
            self.assertLessEqual(count, allowed,
                                 f'{mid} sent {count} times, in flight at'
                                 f' {allowed - 1} fault(s)')
        return sum(received.values()) - len(ids)


class PostgresHostsLayer:
    """zope.testrunner layer: three hosts around a hub (``hosts``, a
    `Hosts`), a PostgreSQL cluster in the hub listening on `Hosts.HUB_IP`
    (``cluster``; server keepalives and ``tcp_user_timeout`` make it see a
    host cut off within seconds), and nothing else: tests start their SMTP
    server in the hub.  Where it cannot run, ``unavailable`` says why and
    ``cluster`` is None: tests skip themselves (`PostgresHostsTestCase`
    does)."""

    HOSTS = 3
    cluster = hosts = None
    unavailable = 'the PostgreSQL hosts layer is not set up'

    @classmethod
    def setUp(cls):
        cls.unavailable = postgres_unavailable() or netns_unavailable()
        if cls.unavailable is None:
            try:
                cls.hosts = Hosts(cls.HOSTS).start()
                cls.cluster = PostgresCluster(
                    tcp=True, address=Hosts.HUB_IP, netns=cls.hosts.hub,
                    clients=[f'{Hosts.HOST_NET}.0/24'],
                    settings={'tcp_user_timeout': '3000'}).create()
            except (NetworkUnavailable, ClusterError, OSError) as e:
                cls.unavailable = (f'PostgreSQL on a network of hosts cannot'
                                   f' run here: {e}')
                cls.tearDown()
        if cls.unavailable is not None:
            print(f'\n  PostgreSQL hosts layer: its tests are skipped:'
                  f' {cls.unavailable}', file=sys.stderr)

    @classmethod
    def tearDown(cls):
        cluster, cls.cluster = cls.cluster, None
        hosts, cls.hosts = cls.hosts, None
        if cluster is not None:
            cluster.remove()
        if hosts is not None:
            hosts.stop()

    @classmethod
    def testSetUp(cls):
        cluster = cls.cluster
        if cluster is not None and not cluster.running:
            cluster.start()
        if cls.hosts is not None:
            for i in range(cls.HOSTS):
                cls.hosts.restore(i)  # a test that failed with one cut off

    @classmethod
    def url(cls, queue, **params):
        """The URL of *queue* over the hub's network (as hosts reach it)."""
        return cls.cluster.url(queue, **params)

    @classmethod
    def local_url(cls, queue):
        """The URL of *queue* over the unix socket (as this process, in no
        host, reaches it)."""
        return cls.cluster.url(queue, host=cls.cluster.directory)

    @classmethod
    def psql(cls, sql, params=None):
        return cls.cluster.execute(sql, params)


class PostgresHostsTestCase(PostgresProcessesTestBase):
    """Processors on the hosts of `PostgresHostsLayer`, an SMTP test
    server in its hub."""

    layer = PostgresHostsLayer
    smtp_host = Hosts.HUB_IP

    def start_server(self):
        server = SMTPTestServer()
        server.host = Hosts.HUB_IP
        self.layer.hosts.in_hub(server.start)
        self.addCleanup(self.layer.hosts.in_hub, server.stop)
        return server

    def url(self, queue):
        return self.layer.local_url(queue)
