"""Network namespaces for tests: another host, without a second machine.

This module owns the pieces the tests' private networks are built from:
`run` (a short administrative command), `inside` (call a function in a
thread that has entered a namespace: sockets it and the threads it starts
open live there), `NetworkUnavailable`, `netns_unavailable` (why
namespaces cannot be made here), `VethPair`: two namespaces joined by
a veth link, a client side and a relay side with an address each, so that
a test can put an SMTP server on a host that is not this one -- nothing on
loopback, and nothing on the machine's own network -- and `Hosts`: several
hosts around a hub, any of which a test can cut off.  The NFS layer's
network (`.nfsnet`) is made of the same pieces.
"""
import ctypes
import itertools
import os
import shutil
import subprocess
import sys
import threading


CLONE_NEWNET = 0x40000000
_names = itertools.count(1)


class NetworkUnavailable(Exception):
    """The namespace or a device cannot be created on this machine."""


def netns_unavailable():
    """Why network namespaces cannot be made here, or None if they may."""
    if not sys.platform.startswith('linux'):
        return 'network namespaces need Linux'
    if os.geteuid() != 0:
        return (f'making network namespaces needs root, and these tests run'
                f' as uid {os.geteuid()}')
    if shutil.which('ip') is None:
        return 'the ip command (iproute2) is missing'
    return None


def run(args, timeout=20, check=True):
    """Run a short administrative command; its CompletedProcess."""
    done = subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode:
        raise RuntimeError(f'{" ".join(args)} failed ({done.returncode}):'
                           f' {done.stderr.strip()}')
    return done


def inside(name, function):
    """Call *function* in a thread that is in the network namespace
    *name*; return its result (or raise its exception)."""
    outcome = {}

    def target():
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f'/run/netns/{name}') as ns:
            if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                outcome['error'] = OSError(ctypes.get_errno(),
                                           'setns failed')
                return
        try:
            outcome['result'] = function()
        except BaseException as e:  # handed to the caller below
            outcome['error'] = e
    thread = threading.Thread(target=target, name=f'netns-{name}')
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['result']


class VethPair:
    """Two network namespaces, ``client`` and ``relay``, joined by a veth
    link: `CLIENT_IP` on one side, `RELAY_IP` on the other.  Names are
    unique per process and pair, so that leftovers of a killed run never
    collide with a new one.  `start` raises `NetworkUnavailable`; `stop`
    deletes both namespaces, and their devices with them."""

    CLIENT_IP, RELAY_IP = '10.79.0.1', '10.79.0.2'

    def __init__(self):
        number = next(_names)
        self.client = f'zsc{os.getpid()}-{number}'
        self.relay = f'zsr{os.getpid()}-{number}'
        self._created = []

    def start(self):
        reason = netns_unavailable()
        if reason is not None:
            raise NetworkUnavailable(reason)
        try:
            for name in (self.client, self.relay):
                run(['ip', 'netns', 'add', name])
                self._created.append(name)
                run(['ip', '-n', name, 'link', 'set', 'lo', 'up'])
            run(['ip', '-n', self.client, 'link', 'add', 'veth0', 'type',
                 'veth', 'peer', 'name', 'veth1', 'netns', self.relay])
            for name, device, address in [
                    (self.client, 'veth0', self.CLIENT_IP),
                    (self.relay, 'veth1', self.RELAY_IP)]:
                run(['ip', '-n', name, 'addr', 'add', f'{address}/24',
                     'dev', device])
                run(['ip', '-n', name, 'link', 'set', device, 'up'])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            self.stop()
            raise NetworkUnavailable(str(e)) from e
        return self

    def in_client(self, function):
        """*function*'s result, called on the client side."""
        return inside(self.client, function)

    def in_relay(self, function):
        """*function*'s result, called on the relay side."""
        return inside(self.relay, function)

    def stop(self):
        """Delete both namespaces (and so the link); a failure is raised,
        so that a leftover namespace is seen."""
        while self._created:
            run(['ip', 'netns', 'del', self._created.pop()])


class Hosts:
    """Several "hosts" on one private network: a ``hub`` namespace holding
    a bridge (`HUB_IP`, where a test's servers listen: start them with
    `in_hub`) and one namespace per host, joined to the bridge by a veth
    link (host *i* at ``HOST_NET.(10 + i)``).  Nothing of it is in this
    machine's own namespace, so that test runs side by side never collide.
    `cut` takes a host's link down (its sockets stay open, and nothing
    passes: as a cable pulled out), `restore` brings it up again.
    `command` is a command line run on a host.  `start` raises
    `NetworkUnavailable`; `stop` deletes every namespace, and the links
    with them."""

    HOST_NET = '10.80.0'
    HUB_IP = f'{HOST_NET}.1'

    def __init__(self, count):
        number = next(_names)
        self.hub = f'zsh{os.getpid()}-{number}'
        self.hosts = [f'zsh{os.getpid()}-{number}-{i}' for i in range(count)]
        self._created = []

    def __repr__(self):
        return f'<Hosts {self.hub}: {len(self.hosts)} hosts>'

    def address(self, i):
        return f'{self.HOST_NET}.{10 + i}'

    def _port(self, i):
        return f'port{i}'  # the hub's side of host i's link

    def start(self):
        reason = netns_unavailable()
        if reason is not None:
            raise NetworkUnavailable(reason)
        try:
            for name in [self.hub, *self.hosts]:
                run(['ip', 'netns', 'add', name])
                self._created.append(name)
                run(['ip', '-n', name, 'link', 'set', 'lo', 'up'])
            hub = ['ip', '-n', self.hub]
            run([*hub, 'link', 'add', 'hub', 'type', 'bridge'])
            run([*hub, 'addr', 'add', f'{self.HUB_IP}/24', 'dev', 'hub'])
            run([*hub, 'link', 'set', 'hub', 'up'])
            for i, host in enumerate(self.hosts):
                port = self._port(i)
                run([*hub, 'link', 'add', port, 'type', 'veth', 'peer',
                     'name', 'eth0', 'netns', host])
                run([*hub, 'link', 'set', port, 'master', 'hub'])
                run([*hub, 'link', 'set', port, 'up'])
                run(['ip', '-n', host, 'addr', 'add',
                     f'{self.address(i)}/24', 'dev', 'eth0'])
                run(['ip', '-n', host, 'link', 'set', 'eth0', 'up'])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            self.stop()
            raise NetworkUnavailable(str(e)) from e
        return self

    def in_hub(self, function):
        """*function*'s result, called in the hub (sockets it opens, and
        the threads and processes it starts, live there)."""
        return inside(self.hub, function)

    def command(self, i, *args):
        """*args* as a command line run on host *i*."""
        return ['ip', 'netns', 'exec', self.hosts[i], *args]

    def cut(self, i):
        """Cut host *i* off the hub: the hub's end of its link goes down.
        The host keeps its address and routes (its end only loses the
        carrier), so that what it sends is lost, not refused: its
        connections hang as behind a pulled cable or a firewall dropping
        packets, and only timeouts tell."""
        run(['ip', '-n', self.hub, 'link', 'set', self._port(i), 'down'])

    def restore(self, i):
        """Bring host *i*'s link up again (idempotent)."""
        run(['ip', '-n', self.hub, 'link', 'set', self._port(i), 'up'])

    def stop(self):
        """Delete every namespace; a failure is raised, so that a leftover
        namespace is seen."""
        while self._created:
            run(['ip', 'netns', 'del', self._created.pop()])
