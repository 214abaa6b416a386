"""The private network of the NFS test layer: a namespace with two bridges.

This module owns `Network`: a network namespace of its own (``ip netns
add``), holding a bridge for NFS (the server's address on it) and a bridge
for SMTP (the test's SMTP sink on it), and one ``tap`` device per guest and
bridge.  Nothing it carries leaves the namespace.  A network cut of a guest
(`cut`) detaches its taps from the bridges and `restore` attaches them again:
the guest keeps its link up and its sockets, as on a real cable pulled out
between two switches (taking the tap down breaks the guest's network for
good).  `Network.inside` runs a callable with the calling thread in the
namespace, so that sockets it opens (an SMTP server's) live there.
`NetworkUnavailable` says the namespace or its devices cannot be made here.
The pieces (`run`, `inside`) are `.netns`'s.
"""
import os
import shutil

# The pieces every test network is made of; imported from here too.
from zope.sendmail.testserver.netns import NetworkUnavailable  # noqa: F401
from zope.sendmail.testserver.netns import inside
from zope.sendmail.testserver.netns import run


#: Addresses: NFS server on NFS_NET.1, SMTP sink on SMTP_NET.1, guest i on
#: .(10 + i) of both.
NFS_NET, SMTP_NET = '10.77.0', '10.78.0'


class Network:
    """A network namespace with an NFS and an SMTP bridge; see the module
    docstring.  ``name`` is unique per process, so that leftovers of a
    killed run never collide with a new one."""

    def __init__(self, guests=2):
        self.name = f'zsnfs{os.getpid()}'
        self.guests = guests
        self.server_ip = f'{NFS_NET}.1'
        self.smtp_ip = f'{SMTP_NET}.1'
        self.created = False

    def ip(self, *args, check=True):
        return run(['ip', '-n', self.name, *args], check=check)

    def start(self):
        if shutil.which('ip') is None:
            raise NetworkUnavailable('the ip command (iproute2) is missing')
        done = run(['ip', 'netns', 'add', self.name], check=False)
        if done.returncode:
            raise NetworkUnavailable(f'cannot create a network namespace:'
                                     f' {done.stderr.strip()}')
        self.created = True
        try:
            self.ip('link', 'set', 'lo', 'up')
            for bridge, net in (('brnfs', NFS_NET), ('brsmtp', SMTP_NET)):
                self.ip('link', 'add', bridge, 'type', 'bridge')
                self.ip('addr', 'add', f'{net}.1/24', 'dev', bridge)
                self.ip('link', 'set', bridge, 'up')
            for i in range(self.guests):
                for tap, bridge in self.taps(i):
                    self.ip('tuntap', 'add', tap, 'mode', 'tap')
                    self.ip('link', 'set', tap, 'master', bridge)
                    self.ip('link', 'set', tap, 'up')
        except RuntimeError as e:
            self.stop()
            raise NetworkUnavailable(str(e)) from e
        return self

    @staticmethod
    def taps(i):
        """Guest *i*'s (tap, bridge) pairs: NFS first, then SMTP."""
        return [(f'nfs{i}', 'brnfs'), (f'smtp{i}', 'brsmtp')]

    @staticmethod
    def addresses(i):
        """Guest *i*'s addresses on the NFS and on the SMTP bridge."""
        return f'{NFS_NET}.{10 + i}', f'{SMTP_NET}.{10 + i}'

    def cut(self, i, smtp=True):
        """Cut guest *i* off the NFS server and, with *smtp*, off the
        SMTP sink too: the whole host is cut off."""
        for tap, _ in self.taps(i)[:2 if smtp else 1]:
            self.ip('link', 'set', tap, 'nomaster')

    def restore(self, i):
        """Reconnect guest *i* (both links; idempotent)."""
        for tap, bridge in self.taps(i):
            self.ip('link', 'set', tap, 'master', bridge)

    def command(self, *args):
        """*args* as a command run inside the namespace."""
        return ['ip', 'netns', 'exec', self.name, *args]

    def inside(self, function):
        """Call *function* in a thread that is in the namespace; return
        its result (or raise its exception).  Threads it starts stay in
        the namespace, as do the sockets they open."""
        return inside(self.name, function)

    def stop(self):
        """Delete the namespace, and with it its bridges and taps."""
        if self.created:
            # Deleting the namespace destroys every device in it; a
            # failure is raised, so that a leftover namespace is seen.
            self.created = False
            run(['ip', 'netns', 'del', self.name])
