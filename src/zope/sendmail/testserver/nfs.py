"""Two (or more) independent NFS clients on one machine, as a test layer.

This module owns `NFSLab`, `NFSLayer` and `nfs_unavailable`.  The lab is
a private network (`.nfsnet`), an nfs-ganesha server on it (`.nfsserver`)
exporting a host directory (``queue_root``, the guests' ``/run/q``), an
SMTP sink on it (a `SMTPTestServer
<zope.sendmail.testserver.server.SMTPTestServer>` listening inside the
namespace: ``sink``; a message's ``peer`` tells which guest sent it), and
the User-Mode-Linux guests a test boots (`.nfsguest`), each a separate
kernel and so a separate NFS client, with the faults `NFSLab.cut` /
`NFSLab.restore` (a network cut between a guest and the NFS server) and
`Guest.crash <zope.sendmail.testserver.nfsguest.Guest.crash>`.  The host
kernel needs no NFS support at all.

It needs root, Debian's ``user-mode-linux`` (which ships the guest
kernel's NFS modules), ``nfs-ganesha`` with ``nfs-ganesha-vfs``,
``rpcbind``, ``nfs-common`` and ``kmod`` (installed by ``.ci/run`` when it
can); `nfs_unavailable` says what is missing, and `NFSLayer` also finds out
whether the namespace, the server and a guest really run here.  Setting
``ZOPE_SENDMAIL_NFS_TESTS=0`` turns the layer off.  Everything it starts
is stopped, and everything it creates removed, by `NFSLab.stop`.
"""
import glob
import os
import shutil
import sys
import tempfile

from zope.sendmail.testserver.nfsguest import LINUX
from zope.sendmail.testserver.nfsguest import MODULES
from zope.sendmail.testserver.nfsguest import Guest
from zope.sendmail.testserver.nfsguest import write_init
from zope.sendmail.testserver.nfsnet import Network
from zope.sendmail.testserver.netns import NetworkUnavailable
from zope.sendmail.testserver.nfsserver import GANESHA
from zope.sendmail.testserver.nfsserver import RPCBIND
from zope.sendmail.testserver.nfsserver import NFSServer
from zope.sendmail.testserver.server import SMTPTestServer


#: What the guests mount: name -> (file system type, options); ``hard``
#: as the documentation asks for a shared queue, with short retries.
MOUNTS = {
    'v4.1': ('nfs4', 'vers=4.1,hard,timeo=50,retrans=2'),
    'v3-nolock': ('nfs', 'nolock,hard,timeo=50,retrans=2'),
    'v3-nlm': ('nfs', 'hard,timeo=50,retrans=2'),
}
_NEEDED = (
    (LINUX, 'user-mode-linux'), (GANESHA, 'nfs-ganesha'),
    ('/usr/lib/*/ganesha/libfsalvfs.so', 'nfs-ganesha-vfs'),
    (RPCBIND, 'rpcbind'), ('/usr/sbin/mount.nfs', 'nfs-common'),
    ('/usr/sbin/modprobe', 'kmod'), ('/usr/sbin/ip', 'iproute2'),
    ('/usr/bin/unshare', 'util-linux'),
    (f'{MODULES}/*/kernel/fs/nfs/nfsv4.ko*', 'user-mode-linux'),
)


def nfs_unavailable():
    """Why the NFS layer cannot run here, or None if it may."""
    if os.environ.get('ZOPE_SENDMAIL_NFS_TESTS', '1') == '0':
        return 'turned off by ZOPE_SENDMAIL_NFS_TESTS=0'
    if not sys.platform.startswith('linux'):
        return 'it needs Linux'
    if os.geteuid() != 0:
        return (f'it must run as root (network namespace, tap devices),'
                f' and these tests run as uid {os.geteuid()}')
    missing = sorted({package for pattern, package in _NEEDED
                      if not glob.glob(pattern)})
    if missing:
        return (f'missing package(s) {", ".join(missing)} (apt-get install'
                f' {" ".join(missing)}, as .ci/run does when root)')
    return None  # it may: NFSLayer finds out whether it really runs


class NFSLab:
    """The network, the NFS server, the SMTP sink and the guests; see the
    module docstring.  *lease* is the server's NFSv4 lease (seconds)."""

    network = server = sink = directory = None

    def __init__(self, guests=2, lease=10):
        self.size, self.lease = guests, lease
        self.guests = []

    @property
    def queue_root(self):
        """The exported host directory (``/run/q`` in the guests)."""
        return self.server.export

    def start(self):
        """Start everything; NetworkUnavailable if this machine cannot."""
        self.directory = tempfile.mkdtemp(prefix='zope.sendmail-nfs-')
        try:
            # The guests' program runs as root, but keep to the rules.
            os.chmod(self.directory, 0o755)
            self.init = write_init(self.directory)
            self.network = Network(self.size).start()
            self.server = NFSServer(self.network, self.directory,
                                    self.lease).start()
            self.sink = SMTPTestServer()
            # Inside the namespace, on the SMTP bridge: where the guests
            # reach it.
            self.sink.host = self.network.smtp_ip
            self.network.inside(self.sink.start)
        except BaseException:
            self.stop()
            raise
        return self

    def guest(self, index, program, mount='v4.1', env=None):
        """Boot guest *index* with the export mounted as *mount* (a key of
        `MOUNTS`), running the shell script *program*; the `Guest`."""
        fstype, options = MOUNTS[mount]
        if fstype == 'nfs4':
            source = self.server.v4_source
        else:
            options = f'{self.server.v3_options},{options}'
            source = self.server.v3_source
        env = dict(SMTP_HOST=self.sink.host, SMTP_PORT=self.sink.port,
                   **(env or {}))
        if mount == 'v3-nlm':
            env['NFS_NLM'] = '1'
        guest = Guest(self.network, index, self.directory, self.init,
                      fstype, options, source, program, env)
        self.guests.append(guest)
        return guest.boot()

    def cut(self, index, smtp=True):
        """Cut guest *index* off the NFS server (and the SMTP sink)."""
        self.network.cut(index, smtp)

    def restore(self, index):
        self.network.restore(index)

    def sender(self, message):
        """The name of the guest that sent *message* (the sink's record)."""
        for guest in self.guests:
            if message.peer[0] == guest.smtp_ip:
                return guest.name
        return message.peer[0]

    def reset(self):
        """Stop the guests, reconnect them, empty the export and the sink:
        as the lab was after `start`."""
        while self.guests:
            guest = self.guests.pop()
            guest.stop()
            shutil.rmtree(guest.directory, ignore_errors=True)
        for index in range(self.size):
            self.restore(index)
        for entry in os.scandir(self.queue_root):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        self.sink.reset()

    def stop(self):
        """Stop and remove everything `start` and `guest` made."""
        errors = []
        for step in ([guest.stop for guest in self.guests]
                     + [getattr(self.sink, 'stop', None),
                        getattr(self.server, 'stop', None),
                        getattr(self.network, 'stop', None)]):
            if step is None:
                continue
            try:
                step()
            except Exception as e:  # go on tearing down; raised below
                errors.append(e)
        self.guests = []
        self.network = self.server = self.sink = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        if errors:
            raise errors[0]


class NFSLayer:
    """zope.testrunner layer running one `NFSLab` (``lab``), reset after
    every test.  When the lab cannot run here, ``unavailable`` says why
    (also printed) and ``lab`` is None: tests must then skip themselves
    (``self.skipTest(layer.unavailable)`` in setUp)."""

    lab = None
    unavailable = 'the NFS layer is not set up'

    @classmethod
    def setUp(cls):
        cls.unavailable = nfs_unavailable()
        if cls.unavailable is None:
            lab = NFSLab()
            try:
                lab.start()
                probe = lab.guest(0, 'true\n').wait_mounted()
                if probe.wait_done(30) != 0:
                    raise RuntimeError(f'a guest does not run a program:'
                                       f'\n{probe.logs()}')
                lab.reset()
                cls.lab = lab
            except (NetworkUnavailable, RuntimeError, OSError) as e:
                lab.stop()
                cls.unavailable = f'it cannot run here: {e}'
        if cls.unavailable is not None:
            print(f'\n  NFS layer: its tests are skipped: {cls.unavailable}',
                  file=sys.stderr)

    @classmethod
    def tearDown(cls):
        lab, cls.lab = cls.lab, None
        cls.unavailable = 'the NFS layer is torn down'
        if lab is not None:
            lab.stop()

    @classmethod
    def testTearDown(cls):
        if cls.lab is not None:
            cls.lab.reset()
