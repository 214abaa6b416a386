"""The base of the tests in the NFS layer (two independent NFS clients).

`NFSTestCase` gives its tests the layer's `NFSLab
<zope.sendmail.testserver.nfs.NFSLab>` as ``self.lab``, skips them (saying
why) where the layer cannot run, and helps write the guests' programs:
`NFSTestCase.python` is a shell command line running this process's
interpreter, with this process's import path, inside a guest.
"""
import collections
import importlib.util
import json
import os
import re
import shlex
import sys
import time
import unittest
from email.message import EmailMessage

import transaction

from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.events import dispatcher
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.testserver.nfs import NFSLayer
from zope.sendmail.tests.support import child_env


class NFSTestCase(unittest.TestCase):

    layer = NFSLayer

    def setUp(self):
        if self.layer.lab is None:
            self.skipTest(f'NFS layer: {self.layer.unavailable}')
        self.lab = self.layer.lab
        self.started = time.monotonic()

    @staticmethod
    def python(*args):
        """A shell command running *args* with our Python in a guest."""
        path = child_env()['PYTHONPATH']
        return ' '.join(['env', shlex.quote(f'PYTHONPATH={path}'),
                         shlex.quote(sys.executable),
                         *map(shlex.quote, map(str, args))])

    def queue_file(self, name):
        """The host's path of *name* in the export (``/run/q`` inside)."""
        return os.path.join(self.lab.queue_root, name)

    def wait_for(self, condition, timeout, what):
        """Poll *condition* (every 0.1 s) until true; fail after
        *timeout* s, saying *what* was awaited and the guests' logs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f'{what}: not within {timeout} s\n'
                          + ''.join(g.logs() for g in self.lab.guests))
            time.sleep(0.1)

    @staticmethod
    def events(guest):
        """The JSON lines a guest's program printed, as dicts."""
        return [json.loads(line) for line in guest.read('output').splitlines()
                if line.startswith('{')]

    def note(self, text):
        """Print an observation (seconds since the test started first)."""
        print(f'\n    [{time.monotonic() - self.started:5.1f} s]'
              f' {self.id().rpartition(".")[2]}: {text}', file=sys.stderr)


#: The processor lease of the scenarios (see the lease contract): takeover
#: bound T, renewal R, margin M; a holder stops starting messages (T - M)
#: / 2 = 12 s after its last renewal began.  T covers the server's 10 s
#: NFSv4 lease, so a cut-off holder's locks are gone before the takeover.
LEASE = dict(timeout=30, renew=3, margin=6)
MESSAGE_ID = re.compile(rb'^message-id:[ \t]*<([^>\r\n]*)>', re.I | re.M)


class ProcessorTestCase(NFSTestCase):
    """Scenarios with ``zope-sendmail --daemon`` in the guests on one
    shared queue (``queue`` in the export, ``/run/q/queue`` inside), its
    mail queued by the host, and the sink's records as the proof."""

    def setUp(self):
        lease = 'zope.sendmail.stores.maildir.lease'
        if importlib.util.find_spec(lease) is None:
            self.skipTest(f'no processor lease ({lease}) here')
        super().setUp()
        transaction.abort()
        self.addCleanup(transaction.abort)
        # Events outside a processor thread go through the dispatcher's.
        self.addCleanup(dispatcher.stop)
        self.queue = self.queue_file('queue')
        Maildir(self.queue, create=True)
        self.delivery = QueuedMailDelivery(self.queue)
        self.arrivals = {}  # index in the sink's records -> time.time()
        self.daemons = []

    def processor(self, index, mount='v4.1', *options):
        """Boot guest *index* running the daemon on the shared queue."""
        lease = [f'--lease-{key}={value}' for key, value in LEASE.items()]
        program = self.python(
            '-m', 'zope.sendmail.console', '--daemon', '-v',
            '--hostname', self.lab.sink.host,
            '--port', self.lab.sink.port, '--no-tls', '--timeout', 5,
            '--interval', 1, '--connections', 2, *lease, *options,
            '/run/q/queue')
        guest = self.lab.guest(index, f'exec {program}\n', mount)
        self.daemons.append(guest)
        self.wait_for(lambda: guest.read('mounted'), 60,
                      f'{guest.name} mounted')
        return guest

    def deliver(self, n):
        """Queue *n* messages in one transaction; their Message-Ids."""
        ids = []
        for i in range(n):
            message = EmailMessage()
            message['From'] = 'sender@example.com'
            message['To'] = 'someone@example.org'
            message['Subject'] = f'NFS scenario message {i}'
            message.set_content(f'message {i}\n')
            ids.append(self.delivery.send(
                'sender@example.com', ['someone@example.org'], message))
        transaction.commit()
        return ids

    def lease_holder(self):
        """The host name in the lease file, or None."""
        try:
            with open(os.path.join(self.queue, '.processor-lease')) as f:
                fields = dict(line.partition(': ')[::2]
                              for line in f.read().splitlines())
        except FileNotFoundError:
            return None
        return fields.get('host')

    def lease_renewed(self):
        with open(os.path.join(self.queue, '.processor-lease')) as f:
            for line in f:
                if line.startswith('renewed: '):
                    return float(line.split()[1])

    def received(self):
        """{Message-Id: [(guest name, arrival time), ...]} from the sink
        (arrival: when this test first saw the record, within 0.1 s)."""
        now, records = time.time(), self.lab.sink.messages
        result = {}
        for n, message in enumerate(records):
            self.arrivals.setdefault(n, now)
            match = MESSAGE_ID.search(message.data)
            key = match.group(1).decode() if match else f'#{n}'
            result.setdefault(key, []).append(
                (self.lab.sender(message), self.arrivals[n]))
        return result

    def wait_for(self, condition, timeout, what):
        def poll():
            self.received()  # notes the arrival times
            for guest in self.daemons:
                # A crashed guest has no process; any other must run.
                if guest.process is not None and not guest.running():
                    self.fail(f'{guest.name} stopped while waiting for'
                              f' {what}\n{guest.logs()}')
            return condition()
        super().wait_for(poll, timeout, what)

    def wait_sent(self, ids, timeout, what='all sent'):
        self.wait_for(lambda: set(ids) <= set(self.received()), timeout,
                      f'{what} ({len(set(ids) & set(self.received()))} of'
                      f' {len(ids)})')

    def queue_empty(self):
        """Nothing left in the queue: no message, claim or sidecar."""
        return not [name for sub in ('new', 'cur')
                    for name in os.listdir(os.path.join(self.queue, sub))]

    def assertSentOnce(self, ids):
        """Each of *ids* reached the sink exactly once, nothing else."""
        counts = {key: len(sends) for key, sends in self.received().items()}
        self.assertEqual(counts, dict.fromkeys(ids, 1),
                         ''.join(g.logs() for g in self.lab.guests))

    def counts(self):
        """How many sends per message, as {sends: messages}."""
        return dict(collections.Counter(
            len(sends) for sends in self.received().values()))

    def catch_holder_claiming(self, n):
        """Queue *n* messages while the sink stalls: once the holder has
        claimed some and waits for the greeting, their ids."""
        sink = self.lab.sink
        sink.stall = True
        before = sink.connections
        ids = self.deliver(n)
        self.wait_for(lambda: sink.connections > before, 30,
                      'the holder connecting')
        return ids

    def senders(self, ids):
        received = self.received()
        return sorted({name for i in ids for name, _ in received.get(i, ())})

    def first_send(self, guest, ids):
        received = self.received()
        return min(at for i in ids for name, at in received.get(i, ())
                   if name == guest)

    def settle(self, seconds):
        """Let the guests go on for *seconds*, noting what arrives."""
        deadline = time.monotonic() + seconds
        self.wait_for(lambda: time.monotonic() > deadline, seconds + 5,
                      'settling')
