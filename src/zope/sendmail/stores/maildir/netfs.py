"""Which file system a queue is on, and whether it is a network one.

On a local file system a lock held by a dead process is released by the
kernel at once, so a processor may take over a dead one's claims on the
next pass.  On a network file system a lock proves nothing: with NFS
``nolock`` (or ``local_lock=``) locks are local to each client, a client
cut off longer than the server's lease loses its locks silently, and an
NFSv3 lock of a client that never returns is never released.  The queue
processor therefore asks `file_system` about its queue: on a network one
it runs a single active processor (`lease`) and takes over
left-over claims by age only.

The answer comes from the mount table, ``/proc/self/mountinfo`` (or
``/proc/mounts``): the mount whose mount point is the longest prefix of
the queue's real path, the last one listed where several are stacked.
Where there is no mount table (not Linux), the answer is None: treated as
local, as before.
"""
import collections
import os
import re


#: File system types whose locks do not prove that their holder is alive.
NETWORK_TYPES = frozenset([
    'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ceph', '9p', 'gfs2', 'ocfs2',
    'lustre', 'afs', 'glusterfs', 'beegfs', 'gpfs', 'fuse'])

MOUNT_TABLES = ('/proc/self/mountinfo', '/proc/mounts')

#: What a mount table says about the mount holding a path.
FileSystem = collections.namedtuple(
    'FileSystem', 'fstype mountpoint options network local_locks')

_ESCAPE = re.compile(r'\\([0-7]{3})')


def _unescape(field):
    # The kernel writes a space as \040, a tab \011, a backslash \134.
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mount_table(text):
    """The ``(mountpoint, fstype, options)`` of each line of *text*, a
    mountinfo or a /proc/mounts file; *options* is a set of the mount's
    and the superblock's options."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if '-' in fields[6:]:
            # mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
            # [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
            dash = fields.index('-', 6)
            tail = fields[dash + 1:]
            if len(tail) < 2:
                continue
            options = fields[5].split(',') + (
                tail[2].split(',') if len(tail) > 2 else [])
            mounts.append((_unescape(fields[4]), tail[0], frozenset(options)))
        elif len(fields) >= 4:
            # /proc/mounts: SOURCE MOUNTPOINT FSTYPE OPTIONS DUMP PASS
            mounts.append((_unescape(fields[1]), fields[2],
                           frozenset(fields[3].split(','))))
    return mounts


def is_network_type(fstype):
    """Whether *fstype* is a network (or cluster, or FUSE) file system."""
    return fstype in NETWORK_TYPES or fstype.startswith('fuse.')


def has_local_locks(options):
    """Whether mount *options* make locks local to one client."""
    for option in options:
        if option == 'nolock':
            return True
        if option.startswith('local_lock=') and option != 'local_lock=none':
            return True
    return False


def _read_table():
    for path in MOUNT_TABLES:
        try:
            with open(path, encoding='utf-8', errors='surrogateescape') as f:
                return f.read()
        except OSError:
            continue  # not Linux, or /proc not mounted: try the next
    return None


def file_system(path, mounts=None):
    """The `FileSystem` holding *path* (it need not exist yet), by the
    mount table *mounts* (its text; by default this host's), or None when
    there is no mount table."""
    text = _read_table() if mounts is None else mounts
    if text is None:
        return None
    real = os.path.realpath(path)
    best = None
    for mountpoint, fstype, options in parse_mount_table(text):
        prefix = mountpoint.rstrip('/') + '/'
        if real != mountpoint and not (real + '/').startswith(prefix):
            continue
        if best is None or len(mountpoint) >= len(best[0]):
            best = (mountpoint, fstype, options)
    if best is None:
        return None
    mountpoint, fstype, options = best
    return FileSystem(fstype, mountpoint, options, is_network_type(fstype),
                      has_local_locks(options))


def describe(fs):
    """*fs* (a `FileSystem` or None) in a few words, for an operator."""
    if fs is None:
        return 'unknown (no mount table): taken for a local one'
    text = f'{fs.fstype} at {fs.mountpoint}'
    if not fs.network:
        return text + ' (local)'
    text += ' (network: one active processor)'
    if fs.local_locks:
        text += ', locks local to this client (nolock)'
    return text
