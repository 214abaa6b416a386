"""Network namespaces for tests: another host, without a second machine.

This module owns the pieces the tests' private networks are built from:
`run` (a short administrative command), `inside` (call a function in a
thread that has entered a namespace: sockets it and the threads it starts
open live there), `NetworkUnavailable`, `netns_unavailable` (why
namespaces cannot be made here), and `VethPair`: two namespaces joined by
a veth link, a client side and a relay side with an address each, so that
a test can put an SMTP server on a host that is not this one -- nothing on
loopback, and nothing on the machine's own network.  The NFS layer's
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
