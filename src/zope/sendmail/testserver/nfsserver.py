"""The NFS server of the NFS test layer: nfs-ganesha in the private network.

This module owns `NFSServer`: one ``ganesha.nfsd`` (a userspace NFS
server: the host kernel needs no NFS support) run inside a `Network
<zope.sendmail.testserver.nfsnet.Network>`'s namespace, listening on its
NFS bridge only, exporting one host directory over NFSv4.1 (pseudo path
``/export``) and NFSv3 (the directory's own path; the MOUNT service on the
fixed `MOUNT_PORT`, so clients need no portmapper; NLM locks on
`NLM_PORT`, with an ``rpc.statd`` beside the server).  Its NFSv4 lease is
short (`NFSServer.lease` seconds, 10 by default), so that a client cut off
or killed loses its locks within seconds, as it would after the default 90
s.  ganesha refuses to serve NFSv3 unless it can register with a
portmapper, so an ``rpcbind`` runs beside it, in a mount namespace of their
own with a private ``/run``: it never meets the host's.  All state (the
configuration, the log, NFSv4 recovery data) lives in a directory the
caller owns.
"""
import os
import signal
import socket
import subprocess
import time

GANESHA = '/usr/bin/ganesha.nfsd'
RPCBIND = '/usr/sbin/rpcbind'
NFS_PORT, MOUNT_PORT, NLM_PORT = 2049, 20048, 32803
STATD = '/usr/sbin/rpc.statd'

_CONFIG = '''\
NFS_CORE_PARAM {{
    Protocols = 3, 4; Bind_addr = {address};
    NFS_Port = {nfs_port}; MNT_Port = {mount_port};
    NLM_Port = {nlm_port}; Enable_NLM = true;
    Enable_RQUOTA = false; Enable_UDP = false;
}}
NFSv4 {{
    Lease_Lifetime = {lease}; Grace_Period = {grace};
    RecoveryBackend = fs; RecoveryRoot = {recovery};
}}
EXPORT {{
    Export_Id = 1; Path = {export}; Pseudo = /export;
    Access_Type = RW; Squash = No_Root_Squash; SecType = sys;
    Protocols = 3, 4; Transports = TCP;
    # The host writes into the export behind ganesha's back (the test's
    # deliveries): no attributes or directory entries from its cache.
    Attr_Expiration_Time = 0;
    FSAL {{ Name = VFS; }}
}}
MDCACHE {{ Use_Getattr_Directory_Invalidation = true; }}
LOG {{ Default_Log_Level = EVENT; }}
'''


def wait(condition, timeout, interval=0.1):
    """Poll *condition* until true (return True) or *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def stop_group(process, timeout=10):
    """End *process* and its process group: SIGTERM, then SIGKILL; reap."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the whole group is gone already
            break
        try:
            process.wait(timeout)
            break
        except subprocess.TimeoutExpired:
            continue  # on to SIGKILL
    # Children that outlived the leader (rpcbind) are in the group too.
    for _ in range(int(timeout * 10)):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise RuntimeError(f'process group {process.pid} survived SIGKILL')


class NFSServer:
    """nfs-ganesha serving *directory*/export in *network*; see the module
    docstring.  ``v4_source`` and ``v3_source`` are what clients mount."""

    process = None

    def __init__(self, network, directory, lease=10):
        self.network, self.directory, self.lease = network, directory, lease
        self.export = os.path.join(directory, 'export')
        self.log = os.path.join(directory, 'ganesha.log')
        address = network.server_ip
        self.v4_source = f'{address}:/export'
        self.v3_source = f'{address}:{self.export}'
        self.v3_options = (f'vers=3,proto=tcp,port={NFS_PORT},'
                           f'mountproto=tcp,mountport={MOUNT_PORT}')

    def start(self, timeout=30):
        recovery = os.path.join(self.directory, 'recovery')
        for path in (self.export, recovery):
            os.makedirs(path, exist_ok=True)
        config = os.path.join(self.directory, 'ganesha.conf')
        with open(config, 'w') as f:
            f.write(_CONFIG.format(
                address=self.network.server_ip, nfs_port=NFS_PORT,
                mount_port=MOUNT_PORT, nlm_port=NLM_PORT, lease=self.lease,
                grace=self.lease + 2, recovery=recovery,
                export=self.export))
        # NLM needs a status monitor beside the server, with state of its
        # own (a private /var/lib/nfs).
        script = (f'mount -t tmpfs tmpfs /run &&'
                  f' mount -t tmpfs tmpfs /var/lib/nfs &&'
                  f' mkdir /var/lib/nfs/sm /var/lib/nfs/sm.bak &&'
                  f' chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak &&'
                  f' {{ {RPCBIND} -f & }} && sleep 0.2 && {STATD} &&'
                  f' exec {GANESHA} -F -f {config} -L {self.log}'
                  f' -p {self.directory}/ganesha.pid -N NIV_EVENT')
        with open(os.path.join(self.directory, 'ganesha.out'), 'wb') as out:
            self.process = subprocess.Popen(
                self.network.command('unshare', '--mount', 'sh', '-c',
                                     script),
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        try:
            if not wait(self._listening, timeout, 0.2):
                raise RuntimeError(
                    f'ganesha.nfsd does not listen on'
                    f' {self.network.server_ip}:{NFS_PORT} and'
                    f' {MOUNT_PORT} after {timeout} s:\n{self.log_text()}')
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self):
        if self.process.poll() is not None:
            raise RuntimeError(f'ganesha.nfsd exited with status'
                               f' {self.process.returncode}:\n'
                               f'{self.log_text()}')

        def probe():
            for port in (NFS_PORT, MOUNT_PORT):
                try:
                    socket.create_connection(
                        (self.network.server_ip, port), 1).close()
                except OSError:
                    return False
            return True
        return self.network.inside(probe)

    def log_text(self, tail=4000):
        """The end of ganesha's log and output (for failure messages)."""
        text = ''
        for name in ('ganesha.out', 'ganesha.log'):
            try:
                with open(os.path.join(self.directory, name),
                          errors='replace') as f:
                    text += f.read()[-tail:]
            except OSError:  # not written yet: nothing to show
                pass
        return text

    def stop(self):
        process, self.process = self.process, None
        if process is not None:
            stop_group(process)
