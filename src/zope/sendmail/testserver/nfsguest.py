"""The NFS clients of the NFS test layer: User-Mode-Linux guests.

This module owns `Guest`: one ``linux.uml`` kernel (Debian's
user-mode-linux), a separate kernel and so an NFS client of its own (its
own NFSv4 client identity, lease and locks, as a second host has), booted
inside a `Network <zope.sendmail.testserver.nfsnet.Network>`'s namespace
with one interface on each of its bridges.  Its root file system is the
host's ``/``, read-only over hostfs, so the host's Python and this checkout
run in it unchanged.  Its init (`INIT`, written into the caller's
directory) loads the guest kernel's NFS modules, mounts the export on
``/run/q``, mounts the guest's own host directory on ``/run/host`` and runs
the shell script ``run`` from there, with its output in ``output`` and its
exit status in ``status`` (the host reads them there; ``mounted`` tells
that the export is mounted), then powers the guest off.  A crash of the
client is `Guest.crash`: SIGKILL of the whole ``linux.uml`` process group,
so the kernel never says goodbye to the server.
"""
import os
import shlex
import signal
import subprocess

from zope.sendmail.testserver.nfsserver import stop_group
from zope.sendmail.testserver.nfsserver import wait


LINUX = '/usr/bin/linux.uml'
MODULES = '/usr/lib/uml/modules'

#: PID 1 of a guest.  Everything it is told comes in ``env.sh``.
INIT = r'''#!/bin/sh
# PID 1 of a User-Mode-Linux guest of zope.sendmail's NFS test layer.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmpfs /run
# Not over /tmp: a checkout there must stay visible.
mkdir -p /run/host /run/m/lib/modules /run/q /run/tmp
export TMPDIR=/run/tmp
mount -t hostfs -o "$GUEST_DIR" none /run/host
exec >/run/host/init.log 2>&1
. /run/host/env.sh
hostname "$GUEST_NAME"
mount -t hostfs -o "$MODULES" none /run/m/lib/modules
modprobe -d /run/m nfs nfs4_unique_id="$GUEST_NAME" &&
    modprobe -d /run/m nfsv4 && modprobe -d /run/m nfsv3
ip link set lo up
ip addr add "$NFS_IP/24" dev vec0 && ip link set vec0 up
ip addr add "$SMTP_IP/24" dev vec1 && ip link set vec1 up
if [ -n "$NFS_NLM" ]; then
    # NFSv3 locks (NLM) need the guest's own portmapper and status monitor.
    mount -t tmpfs tmpfs /var/lib/nfs
    mkdir /var/lib/nfs/sm /var/lib/nfs/sm.bak
    chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak
    rpcbind && sleep 0.2 && rpc.statd
fi
i=0
until mount -t "$NFS_TYPE" -o "$NFS_OPTIONS" "$NFS_SOURCE" /run/q; do
    i=$((i + 1)); [ $i -ge 40 ] && break; sleep 0.5
done
if mountpoint -q /run/q; then
    grep ' /run/q ' /proc/mounts > /run/host/mounted
    (cd /run/host && sh ./run > output 2>&1; echo $? > status)
else
    echo "mount failed" > /run/host/status
fi
sync
exec python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x4321FEDC)'
'''


def write_init(directory):
    """Write `INIT` into *directory*; return its path."""
    path = os.path.join(directory, 'guest-init.sh')
    with open(path, 'w') as f:
        f.write(INIT)
    os.chmod(path, 0o755)
    return path


class Guest:
    """Guest *index* of *network*, mounting *source* (``mount -t fstype
    -o options``), running the shell script *program*; its files live in
    *directory*.  ``name`` is also its host name and NFS client id."""

    process = None

    def __init__(self, network, index, directory, init, fstype, options,
                 source, program, env=None):
        self.network, self.index, self.init = network, index, init
        self.name = f'guest{index}'
        self.directory = os.path.join(directory, self.name)
        self.nfs_ip, self.smtp_ip = network.addresses(index)
        self.mount = (fstype, options, source)
        self.program, self.env = program, dict(env or {})

    def path(self, name):
        return os.path.join(self.directory, name)

    def boot(self):
        os.makedirs(self.directory)
        fstype, options, source = self.mount
        settings = dict(
            GUEST_NAME=self.name, MODULES=MODULES, NFS_IP=self.nfs_ip,
            SMTP_IP=self.smtp_ip, NFS_TYPE=fstype, NFS_OPTIONS=options,
            NFS_SOURCE=source, PYTHONDONTWRITEBYTECODE='1', **self.env)
        with open(self.path('env.sh'), 'w') as f:
            f.writelines(f'export {key}={shlex.quote(str(value))}\n'
                         for key, value in settings.items())
        with open(self.path('run'), 'w') as f:
            f.write(self.program)
        (nfs_tap, _), (smtp_tap, _) = self.network.taps(self.index)
        args = self.network.command(
            LINUX, 'mem=160M', f'umid={self.network.name}-{self.name}',
            f'uml_dir={self.directory}', 'root=/dev/root',
            'rootfstype=hostfs', 'rootflags=/', 'ro', f'init={self.init}',
            f'vec0:transport=tap,ifname={nfs_tap}',
            f'vec1:transport=tap,ifname={smtp_tap}',
            'con=null', 'con0=null,fd:1', f'GUEST_DIR={self.directory}')
        with open(self.path('console.log'), 'wb') as console:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def running(self):
        return self.process is not None and self.process.poll() is None

    def wait_mounted(self, timeout=60):
        """Wait until the export is mounted and the program started;
        raise RuntimeError (with the guest's logs) if it is not."""
        exists = os.path.exists
        if not wait(lambda: exists(self.path('mounted'))
                    or exists(self.path('status')) or not self.running(),
                    timeout):
            raise RuntimeError(f'{self.name}: not mounted after {timeout}'
                               f' s\n{self.logs()}')
        if not exists(self.path('mounted')):
            raise RuntimeError(f'{self.name}: the export was not mounted'
                               f'\n{self.logs()}')
        return self

    def wait_done(self, timeout):
        """Wait until the guest powered off; its program's exit status
        (None when it did not report one)."""
        if not wait(lambda: not self.running(), timeout):
            raise RuntimeError(f'{self.name}: still running after'
                               f' {timeout} s\n{self.logs()}')
        return self.status()

    def status(self):
        try:
            with open(self.path('status')) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else text

    def read(self, name):
        try:
            with open(self.path(name), errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def logs(self, tail=3000):
        """The ends of its console, init log and program output."""
        return ''.join(f'--- {self.name} {name}:\n{self.read(name)[-tail:]}\n'
                       for name in ('console.log', 'init.log', 'output'))

    def crash(self):
        """Kill the guest at once: no unmount, no goodbye to the server."""
        process, self.process = self.process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # powered off already
                pass
            stop_group(process)

    stop = crash
