"""Claims that are safe wherever they run: the defects of issue 11.

Every OSError of a claim is handled (and closes what it opened), a release
removes only what is still its own, the housekeeping goes on per file, a
deferred message's due time is read afresh, and a left-over claim on a
network file system is taken over only by age.  Real files throughout.
"""
import os
import shutil
import tempfile
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer


def open_fds():
    return len(os.listdir('/proc/self/fd'))


class QueueTestBase(unittest.TestCase):

    def setUp(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-claims-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        self.maildir = Maildir(self.queue, create=True)
        self.new = os.path.join(self.queue, 'new')
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)

    def message(self, sub='new', name='1.M1P1Q1.host'):
        path = os.path.join(self.queue, sub, name)
        with open(path, 'wb') as f:
            f.write(b'X-Zope-From: a@example.com\nX-Zope-To: b@example.com'
                    b'\n\nSubject: hi\n\nbody\n')
        return path

    def dotfiles(self, sub='new'):
        return sorted(n for n in os.listdir(os.path.join(self.queue, sub))
                      if n.startswith('.'))

    def claim(self, path, **kw):
        from zope.sendmail.stores.maildir.claim import claim
        return claim(path, **kw)


class ClaimDefectTests(QueueTestBase):

    def test_directory_entry_in_new_is_not_claimed(self):
        # link() of a directory fails with EPERM: logged, nothing left.
        path = os.path.join(self.new, '2.M1P1Q1.host')
        os.mkdir(path)
        before = open_fds()
        self.assertIsNone(self.claim(path))
        self.assertEqual(open_fds(), before)
        self.assertEqual(self.dotfiles(), [])
        self.assertIn('cannot claim', str(self.log))

    def test_a_link_in_place_of_a_message_is_never_claimed(self):
        secret = os.path.join(self.tmp, 'secret')
        with open(secret, 'w') as f:
            f.write('SECRET\n')
        path = os.path.join(self.new, '2.M1P1Q1.host')
        os.symlink(secret, path)
        before = open_fds()
        self.assertIsNone(self.claim(path))
        self.assertEqual(open_fds(), before)
        self.assertEqual(self.dotfiles(), [])
        self.assertIn('is never read', str(self.log))
        self.assertNotIn('SECRET', str(self.log))

    def test_a_claim_holds_the_file_it_checked(self):
        # Read and sent is the file opened, whatever is put at its path.
        path = self.message()
        held = self.claim(path)
        os.unlink(path)
        with open(path, 'wb') as f:
            f.write(b'X-Zope-From: a@x\nX-Zope-To: evil@x\n\nforged\n')
        self.assertIn(b'b@example.com', held.read())
        self.assertEqual(held.stat().st_size, len(held.read()))
        held.release()
        self.assertEqual(self.dotfiles(), [])

    def test_claim_file_that_is_a_directory(self):
        # Not a claim of ours: it waits out the bound, then cannot even be
        # removed; either way, said, never raised, nothing left open.
        path = self.message()
        lock = os.path.join(self.new, '.claim-' + os.path.basename(path))
        os.mkdir(lock)
        before = open_fds()
        self.assertIsNone(self.claim(path))
        self.assertEqual(open_fds(), before)
        self.assertIn('cannot use the claim file of ' + path + ': it is a'
                      ' directory', str(self.log))
        old = time.time() - 7200
        os.utime(lock, (old, old))
        self.assertIsNone(self.claim(path))
        self.assertEqual(open_fds(), before)
        self.assertIn('cannot break the claim on ' + path, str(self.log))

    def test_release_leaves_the_files_of_the_next_holder(self):
        # Our claim was taken over (as on NFS after a long network cut):
        # the next holder's .claim-X and .sending-X are not ours to remove.
        path = self.message()
        name = os.path.basename(path)
        lock = os.path.join(self.new, '.claim-' + name)
        sending = os.path.join(self.new, '.sending-' + name)
        mine = self.claim(path)
        os.unlink(lock)
        os.unlink(sending)
        theirs = self.claim(path)
        self.assertIsNotNone(theirs)
        mine.release()
        self.assertFalse(mine.held)
        self.assertEqual(self.dotfiles(), ['.claim-' + name,
                                           '.sending-' + name])
        self.assertIn('taken over meanwhile', str(self.log))
        theirs.release()
        self.assertEqual(self.dotfiles(), [])

    def test_release_leaves_a_sending_link_to_another_file(self):
        path = self.message()
        name = os.path.basename(path)
        sending = os.path.join(self.new, '.sending-' + name)
        mine = self.claim(path)
        other = self.message(name='3.M1P1Q1.host')
        os.unlink(sending)
        os.link(other, sending)
        mine.release()
        self.assertEqual(self.dotfiles(), ['.sending-' + name])

    def test_young_left_over_claim_on_network_fs_waits(self):
        path = self.message()
        lock = os.path.join(self.new, '.claim-' + os.path.basename(path))
        open(lock, 'w').close()
        self.assertIsNone(self.claim(path, stale_after=60))
        old = time.time() - 61
        os.utime(lock, (old, old))
        claim = self.claim(path, stale_after=60)
        self.assertIsNotNone(claim)
        claim.release()

    def test_lock_never_released_is_broken_past_the_bound(self):
        # An NFSv3 client holding the NLM lock died for good: the lock
        # stays; on a network file system its claim is replaced by age.
        import fcntl
        path = self.message()
        name = os.path.basename(path)
        lock = os.path.join(self.new, '.claim-' + name)
        sending = os.path.join(self.new, '.sending-' + name)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.link(path, sending)
        self.assertIsNone(self.claim(path))
        self.assertIsNone(self.claim(path, stale_after=60))
        old = time.time() - 61
        for stale in (lock, sending):
            os.utime(stale, (old, old), follow_symlinks=False)
        claim = self.claim(path, stale_after=60)
        self.assertIsNotNone(claim)
        self.assertNotEqual(os.stat(lock).st_ino, os.fstat(fd).st_ino)
        self.assertIn('breaking the claim', str(self.log))
        claim.release()
        self.assertEqual(self.dotfiles(), [])

    def test_deferred_message_due_time_read_afresh(self):
        path = self.message(sub='cur')
        later = time.time() + 600
        os.utime(path, (later, later))
        claim = self.claim(path)
        self.assertFalse(claim.due(time.time()))
        self.assertTrue(claim.due(later))
        claim.release()
        new = self.claim(self.message())
        self.assertTrue(new.due(0))
        new.release()


class OrphanTests(QueueTestBase):
    """The housekeeping goes on per file."""

    def remove(self, **kw):
        from zope.sendmail.stores.maildir.orphans import remove_orphans
        return remove_orphans(self.new, **kw)

    def test_odd_orphan_does_not_stop_the_others(self):
        old = time.time() - 3600
        bad = os.path.join(self.new, '.claim-gone1')
        os.mkdir(bad)   # opening it for writing fails (EISDIR)
        good = []
        for name in ('.claim-gone2', '.retry-gone3', '.sending-gone4'):
            good.append(os.path.join(self.new, name))
            open(good[-1], 'w').close()
        for path in good + [bad]:
            os.utime(path, (old, old))
        os.chmod(good[0], 0o400)  # opened for writing all the same
        self.assertEqual(self.remove(), 3)
        self.assertEqual(self.dotfiles(), ['.claim-gone1'])
        self.assertIn('housekeeping: cannot remove', str(self.log))

    def test_links_and_fifos_are_removed_not_followed(self):
        target = os.path.join(self.tmp, 'target')
        with open(target, 'w') as f:
            f.write('kept\n')
        old = time.time() - 3600
        for name, make in (('.claim-gone1', lambda p: os.symlink(target, p)),
                           ('.claim-gone2', os.mkfifo),
                           ('.retry-gone3', lambda p: os.symlink(target, p))):
            path = os.path.join(self.new, name)
            make(path)
            os.utime(path, (old, old), follow_symlinks=False)
        self.assertEqual(self.remove(), 3)
        self.assertEqual(self.dotfiles(), [])
        with open(target) as f:
            self.assertEqual(f.read(), 'kept\n')

    def test_live_claim_is_left(self):
        path = self.message()
        claim = self.claim(path)
        os.unlink(path)  # as if sent, its claim not yet released
        self.remove(min_age=0)
        self.assertEqual(self.dotfiles(), ['.claim-' + os.path.basename(path)])
        claim.release()


class PrivateFileTests(unittest.TestCase):
    """Files 0600, directories 0700, whatever the umask."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-modes-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        old = os.umask(0)
        self.addCleanup(os.umask, old)

    def mode(self, path):
        return oct(os.stat(path).st_mode & 0o777)

    def test_queue_directories_made_by_a_delivery(self):
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        queue = os.path.join(self.tmp, 'site', 'queue')
        QueuedMailDelivery(queue, durable=False).send(
            'a@example.com', ['b@example.com'], b'Subject: x\n\nbody\n')
        transaction.commit()
        for path in (os.path.join(self.tmp, 'site'), queue):
            self.assertEqual(self.mode(path), '0o700', path)
        for sub in ('tmp', 'new', 'cur'):
            self.assertEqual(self.mode(os.path.join(queue, sub)), '0o700')
        [name] = os.listdir(os.path.join(queue, 'new'))
        self.assertEqual(self.mode(os.path.join(queue, 'new', name)),
                         '0o600')

    def test_umask_without_owner_bits(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        os.umask(0o277)
        queue = os.path.join(self.tmp, 'queue')
        Maildir(queue, create=True)
        self.assertEqual(self.mode(queue), '0o700')

    def test_deferred_rewrite_and_bookkeeping_are_private(self):
        from zope.sendmail.stores.maildir.claim import claim
        from zope.sendmail.stores.maildir.folder import Maildir
        queue = os.path.join(self.tmp, 'queue')
        maildir = Maildir(queue, create=True)
        writer = maildir.newMessage()
        writer.write(b'X-Zope-From: a@x\nX-Zope-To: b@x, c@x\n\nbody\n')
        writer.commit()
        held = claim(writer.final_path)
        held.defer(time.time() + 60, b'attempts: 1\n',
                   b'X-Zope-From: a@x\nX-Zope-To: c@x\n\nbody\n')
        cur = os.path.join(queue, 'cur')
        names = os.listdir(cur)
        self.assertEqual(len(names), 2, names)
        for name in names:
            self.assertEqual(self.mode(os.path.join(cur, name)), '0o600',
                             name)
        self.assertEqual(os.listdir(os.path.join(queue, 'tmp')), [])
        self.assertEqual(os.listdir(os.path.join(queue, 'new')), [])


class ProcessorSurvivesTests(unittest.TestCase):
    """A pass over a queue with odd entries sends the others."""

    layer = SMTPServerLayer

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()

    def test_directory_entry_and_old_orphan(self):
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.thread import QueueProcessorThread
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-claims-')
        self.addCleanup(shutil.rmtree, tmp, True)
        queue = os.path.join(tmp, 'queue')
        delivery = QueuedMailDelivery(queue, durable=False)
        for n in range(3):
            delivery.send('a@example.com', ['b@example.com'],
                          f'Subject: {n}\n\nbody\n'.encode())
        transaction.commit()
        os.mkdir(os.path.join(queue, 'new', '0.M1P1Q1.odd'))
        orphan = os.path.join(queue, 'new', '.claim-0.M1P1Q2.gone')
        open(orphan, 'w').close()
        old = time.time() - 3600
        os.utime(orphan, (old, old))
        server = self.layer.server
        log = InstalledHandler('zope.sendmail')
        self.addCleanup(log.uninstall)
        thread = QueueProcessorThread(
            queuePath=queue, connections=2,
            mailer=SMTPMailer(server.host, server.port, timeout=10))
        result = thread.process_once()
        self.assertEqual(dict(result.counts), {'sent': 3})
        self.assertEqual(len(server.messages), 3)
        self.assertFalse(os.path.exists(orphan))
        self.assertEqual(os.listdir(os.path.join(queue, 'new')),
                         ['0.M1P1Q1.odd'])
        self.assertIn("skipped 'new/0.M1P1Q1.odd': it is a directory, not a"
                      " message", str(log))
