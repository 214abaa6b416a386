"""Network file systems recognised from mount table fixtures."""
import os
import tempfile
import unittest


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 27 0:40 / /srv/nfs4 rw,relatime shared:7 - nfs4 fs1:/export rw,vers=4.1,\
rsize=1048576,hard,proto=tcp,timeo=600,retrans=2,sec=sys,local_lock=none
31 27 0:41 / /srv/nfs3 rw,relatime - nfs fs1:/old rw,vers=3,hard,nolock,\
proto=tcp,local_lock=all
32 27 0:42 / /srv/smb rw,relatime - cifs //fs2/share rw,vers=3.1.1
33 27 0:43 / /srv/ssh rw,nosuid - fuse.sshfs me@fs3:/q rw,user_id=0
34 27 0:44 / /srv/my\\040queues rw - ceph 10.0.0.1:/ rw
35 27 0:45 / /srv/nfs4/local rw - tmpfs tmpfs rw
36 27 0:46 / /srv/stack rw - ext4 /dev/sdb1 rw
37 27 0:47 / /srv/stack rw - 9p share rw,trans=virtio
38 27 0:48 / /mnt/ntfs rw - fuseblk /dev/sdc1 rw
"""

PROC_MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
fs1:/export /srv/q nfs4 rw,vers=4.2,hard,local_lock=none 0 0
fs1:/old /srv/old nfs rw,vers=3,local_lock=posix 0 0
"""


class FileSystemTests(unittest.TestCase):

    def fs(self, path, table=MOUNTINFO):
        from zope.sendmail.stores.maildir.netfs import file_system
        return file_system(path, table)

    def test_local(self):
        fs = self.fs('/var/spool/zope/queue')
        self.assertEqual((fs.fstype, fs.mountpoint, fs.network,
                          fs.local_locks), ('ext4', '/', False, False))

    def test_nfs4_with_its_superblock_options(self):
        fs = self.fs('/srv/nfs4/queue')
        self.assertEqual((fs.fstype, fs.mountpoint, fs.network,
                          fs.local_locks), ('nfs4', '/srv/nfs4', True, False))
        self.assertIn('hard', fs.options)

    def test_nfs3_nolock(self):
        fs = self.fs('/srv/nfs3')
        self.assertEqual((fs.fstype, fs.network, fs.local_locks),
                         ('nfs', True, True))

    def test_local_lock_option_alone(self):
        fs = self.fs('/srv/old/q', PROC_MOUNTS)
        self.assertEqual((fs.fstype, fs.local_locks), ('nfs', True))
        fs = self.fs('/srv/q/q', PROC_MOUNTS)
        self.assertEqual((fs.fstype, fs.network, fs.local_locks),
                         ('nfs4', True, False))

    def test_other_network_types(self):
        for path, fstype in (('/srv/smb/q', 'cifs'),
                             ('/srv/ssh/q', 'fuse.sshfs'),
                             ('/srv/my queues/q', 'ceph')):
            fs = self.fs(path)
            self.assertEqual((fs.fstype, fs.network), (fstype, True), path)

    def test_block_device_fuse_is_local(self):
        self.assertFalse(self.fs('/mnt/ntfs/q').network)

    def test_longest_prefix_and_last_of_a_stack(self):
        self.assertEqual(self.fs('/srv/nfs4/local/q').fstype, 'tmpfs')
        self.assertEqual(self.fs('/srv/nfs4local').fstype, 'ext4')
        self.assertEqual(self.fs('/srv/stack/q').fstype, '9p')

    def test_network_types(self):
        from zope.sendmail.stores.maildir.netfs import is_network_type
        for fstype in ('nfs', 'nfs4', 'cifs', 'smb3', 'ceph', 'fuse',
                       'fuse.glusterfs', '9p', 'gfs2', 'ocfs2', 'lustre'):
            self.assertTrue(is_network_type(fstype), fstype)
        for fstype in ('ext4', 'xfs', 'btrfs', 'tmpfs', 'zfs', 'fuseblk'):
            self.assertFalse(is_network_type(fstype), fstype)

    def test_symlink_resolved(self):
        with tempfile.TemporaryDirectory() as tmp:
            link = os.path.join(tmp, 'q')
            os.symlink('/srv/nfs4/queue', link)
            table = MOUNTINFO + (f'40 27 0:50 / {tmp} rw - tmpfs tmpfs rw\n')
            self.assertEqual(self.fs(link, table).fstype, 'nfs4')

    def test_no_mount_table(self):
        self.assertIsNone(self.fs('/q', ''))

    def test_this_host(self):
        from zope.sendmail.stores.maildir.netfs import file_system
        fs = file_system(tempfile.gettempdir())
        if fs is None:
            self.skipTest('no mount table on this system')
        self.assertIsInstance(fs.fstype, str)

    def test_describe(self):
        from zope.sendmail.stores.maildir.netfs import describe
        self.assertEqual(describe(self.fs('/q')), 'ext4 at / (local)')
        self.assertEqual(describe(self.fs('/srv/nfs3/q')),
                         'nfs at /srv/nfs3 (network: one active processor),'
                         ' locks local to this client (nolock)')
        self.assertIn('unknown', describe(None))
