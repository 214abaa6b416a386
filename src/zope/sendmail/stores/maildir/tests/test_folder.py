"""Tests of the Maildir queue storage, on real directories."""
import os
import shutil
import stat
import tempfile
import unittest


class MaildirTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.path = os.path.join(self.tmp, 'queue')

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def _getTargetClass(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        return Maildir

    def _makeOne(self, create=True):
        return self._getTargetClass()(self.path, create)

    def test_provides_interfaces(self):
        from zope.interface.verify import verifyClass
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMaildir
        from zope.sendmail.interfaces import IMaildirFactory
        from zope.sendmail.interfaces import IMaildirMessageWriter
        verifyObject(IMaildirFactory, self._getTargetClass())
        verifyClass(IMaildir, self._getTargetClass())
        maildir = self._makeOne()
        verifyObject(IMaildir, maildir)
        writer = maildir.newMessage()
        verifyObject(IMaildirMessageWriter, writer)
        writer.abort()

    def test_create(self):
        self._makeOne()
        for sub in ('tmp', 'new', 'cur'):
            self.assertTrue(os.path.isdir(os.path.join(self.path, sub)))

    def test_not_a_maildir(self):
        os.mkdir(self.path)
        os.mkdir(os.path.join(self.path, 'new'))
        with self.assertRaisesRegex(ValueError, r"is not a Maildir: it lacks"
                                    r" the tmp/, cur/ subdirectories"):
            self._makeOne(create=False)
        with self.assertRaisesRegex(ValueError, 'is not a Maildir'):
            self._getTargetClass()(os.path.join(self.tmp, 'nothing'))

    def test_existing_maildir_opens_without_create(self):
        self._makeOne()
        self.assertEqual(list(self._makeOne(create=False)), [])

    def test_write_commit_iterate(self):
        maildir = self._makeOne()
        writer = maildir.newMessage()
        writer.write(b'X-Zope-From: a\n')
        writer.writelines([b'line\n', 'text \N{SNOWMAN}\n'])
        self.assertEqual(list(maildir), [])
        self.assertEqual(os.listdir(os.path.join(self.path, 'tmp')),
                         [os.path.basename(writer.path)])
        writer.commit()
        self.assertEqual(list(maildir), [writer.final_path])
        with open(writer.final_path, 'rb') as f:
            self.assertEqual(f.read(), b'X-Zope-From: a\nline\ntext '
                             b'\xe2\x98\x83\n')
        self.assertEqual(os.listdir(os.path.join(self.path, 'tmp')), [])
        writer.commit()  # harmless twice
        writer.abort()   # harmless after commit: the message stays
        self.assertEqual(list(maildir), [writer.final_path])

    def test_mode_0600(self):
        writer = self._makeOne().newMessage()
        writer.commit()
        mode = stat.S_IMODE(os.stat(writer.final_path).st_mode)
        self.assertEqual(mode, 0o600)

    def test_abort_removes(self):
        writer = self._makeOne().newMessage()
        writer.write(b'x')
        writer.abort()
        writer.abort()
        self.assertEqual(os.listdir(os.path.join(self.path, 'tmp')), [])
        with self.assertRaisesRegex(RuntimeError, 'aborted'):
            writer.commit()
        with self.assertRaisesRegex(RuntimeError, 'aborted'):
            writer.sync()

    def test_sync_open_and_closed(self):
        maildir = self._makeOne()
        writer = maildir.newMessage()
        writer.write(b'x')
        writer.sync()
        writer.close()
        writer.sync()
        writer.commit()
        writer.sync()  # committed: nothing to do
        maildir.sync_new()

    def test_iteration_skips_dot_files_and_sees_cur(self):
        maildir = self._makeOne()
        for name in ('.sending-x', '.rejected-y'):
            open(os.path.join(self.path, 'new', name), 'w').close()
        open(os.path.join(self.path, 'cur', 'old'), 'w').close()
        open(os.path.join(self.path, 'new', 'fresh'), 'w').close()
        self.assertEqual(list(maildir),
                         [os.path.join(self.path, 'new', 'fresh'),
                          os.path.join(self.path, 'cur', 'old')])

    def test_iteration_lists_regular_files_only(self):
        maildir = self._makeOne()
        new = os.path.join(self.path, 'new')
        os.mkfifo(os.path.join(new, '1.fifo'))
        os.symlink('/dev/zero', os.path.join(new, '2.link'))
        os.mkdir(os.path.join(new, '3.dir'))
        open(os.path.join(new, '4.file'), 'w').close()
        self.assertEqual(list(maildir), [os.path.join(new, '4.file')])

    def test_cleanup_removes_links_not_their_targets(self):
        maildir = self._makeOne()
        tmp = os.path.join(self.path, 'tmp')
        target = os.path.join(self.tmp, 'target')
        open(target, 'w').close()
        os.symlink(target, os.path.join(tmp, 'link'))
        os.mkfifo(os.path.join(tmp, 'fifo'))
        os.mkdir(os.path.join(tmp, 'dir'))
        old = 1000000000
        for name in ('link', 'fifo', 'dir'):
            os.utime(os.path.join(tmp, name), (old, old),
                     follow_symlinks=False)
        self.assertEqual(maildir.cleanup(), 2)
        self.assertEqual(os.listdir(tmp), ['dir'])
        self.assertTrue(os.path.exists(target))

    def test_iteration_tolerates_vanished_subdir(self):
        maildir = self._makeOne()
        os.rmdir(os.path.join(self.path, 'cur'))
        self.assertEqual(list(maildir), [])

    def test_names_unique(self):
        maildir = self._makeOne()
        writers = [maildir.newMessage() for i in range(200)]
        names = {os.path.basename(w.path) for w in writers}
        self.assertEqual(len(names), 200)
        for w in writers:
            w.abort()

    def test_name_has_pid_and_host(self):
        import socket

        from zope.sendmail.stores.maildir.names import unique_name
        name = unique_name()
        self.assertIn('P%d' % os.getpid(), name)
        self.assertTrue(name.endswith('.' + socket.gethostname()
                                      .replace('/', r'\057')
                                      .replace(':', r'\072')))
        self.assertNotIn('/', name)
