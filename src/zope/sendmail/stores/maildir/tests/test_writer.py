"""Tests of the commit of a queued message when its tmp/ file is swapped
for another between send() and the commit: the impostor is never queued,
the message written is (while the writer holds its descriptor), and an
ERROR names the message.  Real files and real transactions."""
import gc
import logging
import os
import shutil
import tempfile
import threading
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support.hostile import in_thread


IMPOSTOR = b'X-Zope-From: a@example.com\nX-Zope-To: evil@example.com\n\nx\n'


def open_fds():
    return len(os.listdir('/proc/self/fd'))


class WriterTestBase(unittest.TestCase):

    def setUp(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        transaction.abort()
        gc.collect()  # writers earlier tests dropped give their descriptors
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-writer-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        self.maildir = Maildir(self.queue, create=True)
        self.log = InstalledHandler('zope.sendmail', level=logging.WARNING)
        self.addCleanup(self.log.uninstall)
        self.addCleanup(transaction.abort)

    def files(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def read(self, sub, name):
        with open(os.path.join(self.queue, sub, name), 'rb') as f:
            return f.read()

    def send(self, durable=False):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=durable)
        before = set(self.files('tmp'))
        message_id = delivery.send('a@example.com', ['b@example.com'],
                                   b'Subject: the real one\n\nbody\n')
        [name] = set(self.files('tmp')) - before
        return message_id, os.path.join(self.queue, 'tmp', name)

    def swap(self, path, make=None):
        """Put another file in the place of *path*, keeping the original
        elsewhere (so its inode lives on)."""
        os.rename(path, os.path.join(self.tmp, 'moved-away'))
        if make is None:
            with open(path, 'wb') as f:
                f.write(IMPOSTOR)
        else:
            make(path)

    def hold_descriptors(self):
        """Writers holding every descriptor a process may keep (what other
        writers alive in this process left of them): the next one closes
        its own."""
        from zope.sendmail.stores.maildir.writer import MaildirMessageWriter
        gc.collect()  # writers dropped by earlier tests give theirs back
        for i in range(MaildirMessageWriter.keep_open + 1):
            writer = self.maildir.newMessage()
            writer.close()
            self.addCleanup(writer.abort)
            if writer._fd is None:
                return  # the budget is used up
        self.fail('writers keep more descriptors than keep_open')


class SwappedBeforeCommitTests(WriterTestBase):

    def test_the_message_written_is_queued_the_impostor_is_not(self):
        message_id, path = self.send(durable=True)
        self.swap(path)
        transaction.commit()
        [name] = self.files('new')
        self.assertIn(b'the real one', self.read('new', name))
        self.assertEqual(self.files('tmp'), [os.path.basename(path)])
        self.assertEqual(self.read('tmp', os.path.basename(path)), IMPOSTOR)
        with open(os.path.join(self.tmp, 'moved-away'), 'rb') as f:
            self.assertIn(b'the real one', f.read())
        [record] = self.log.records
        self.assertEqual(record.levelname, 'ERROR')
        self.assertEqual(record.getMessage(), (
            f'message {message_id}: {path} was not the file written when it'
            f' was committed: another file was put in its place; it is left'
            f' there, not queued; the message written was queued as'
            f' {os.path.join(self.queue, "new", name)}'))

    def test_without_its_descriptor_nothing_is_queued(self):
        self.hold_descriptors()
        message_id, path = self.send()
        self.swap(path)
        transaction.commit()
        self.assertEqual(self.files('new'), [])
        [record] = self.log.records
        self.assertEqual(record.levelname, 'ERROR')
        self.assertIn(f'message {message_id} committed but not queued',
                      record.getMessage())
        self.assertIn('another file was put in its place; it is left there,'
                      ' not queued; the message written is lost',
                      record.getMessage())

    def test_without_its_descriptor_the_vote_refuses(self):
        # Durable: the vote syncs the file it finds, if it is the one.
        self.hold_descriptors()
        message_id, path = self.send(durable=True)
        self.swap(path)
        with self.assertRaisesRegex(OSError, 'is not the file written'):
            transaction.commit()
        transaction.abort()
        self.assertEqual(self.files('new'), [])

    def test_a_fifo_in_its_place_blocks_no_vote(self):
        self.hold_descriptors()
        message_id, path = self.send(durable=True)
        self.swap(path, os.mkfifo)
        txn = transaction.get()  # committed in a thread, bounded in time
        with self.assertRaisesRegex(OSError, 'is a FIFO, not a regular'):
            in_thread(txn.commit)
        transaction.abort()
        self.assertEqual(self.files('new'), [])

    def test_unchanged_past_the_bound(self):
        self.hold_descriptors()
        self.send(durable=True)
        transaction.commit()
        self.assertEqual(len(self.files('new')), 1)
        self.assertEqual(str(self.log), '')


class SwappedDuringRenameTests(WriterTestBase):

    def _racing(self):
        # The swap lands between the check and the rename: a subclass
        # does it there, as another process could.
        from zope.sendmail.stores.maildir.writer import MaildirMessageWriter
        from zope.sendmail.stores.maildir.writer import new_message
        test = self

        class Racing(MaildirMessageWriter):
            def _mine(self, st, renamed=False):
                mine = super()._mine(st, renamed)
                if mine and not renamed and type(self) is Racing:
                    test.swap(self.path)
                    self.__class__ = MaildirMessageWriter  # once
                return mine

        writer = new_message(self.queue)
        writer.__class__ = Racing
        writer.write(b'X-Zope-From: a@x\nX-Zope-To: b@x\n\nthe real one\n')
        return writer

    def test_the_impostor_is_set_aside(self):
        writer = self._racing()
        writer.commit()
        name = os.path.basename(writer.final_path)
        self.assertEqual(self.files('new'), ['.rejected-' + name, name])
        self.assertEqual(self.read('new', '.rejected-' + name), IMPOSTOR)
        self.assertIn(b'the real one', self.read('new', name))
        self.assertIn('was moved to ' + writer.final_path + ', then set'
                      ' aside as', writer.replaced)
        self.assertTrue(writer.replaced.endswith(
            'never to be sent; the message written was queued as ' +
            writer.final_path))
        self.assertEqual(self.files('tmp'), [])

    def test_deferring_with_a_rewrite_keeps_its_due_time(self):
        writer = self._racing()
        target = os.path.join(self.queue, 'cur', 'X')
        writer.final_path = target
        writer.commit(mtime=1234567890)
        self.assertEqual(os.stat(target).st_mtime, 1234567890)
        self.assertIn(b'the real one', self.read('cur', 'X'))
        self.assertEqual(self.files('cur'), ['.rejected-X', 'X'])


class WriterLifecycleTests(WriterTestBase):

    def test_descriptors_kept_until_commit_or_abort(self):
        before = open_fds()
        writers = [self.maildir.newMessage() for i in range(3)]
        for writer in writers:
            writer.write(b'x')
            writer.close()
            with self.assertRaisesRegex(ValueError, 'cannot write to a'
                                        ' closed message'):
                writer.write(b'more')
        self.assertEqual(open_fds(), before + 3)
        writers[0].commit()
        writers[1].abort()
        self.assertEqual(open_fds(), before + 1)
        del writers[2], writer
        gc.collect()
        self.assertEqual(open_fds(), before)

    def test_kept_descriptors_are_bounded_per_process(self):
        from zope.sendmail.stores.maildir import writer as maildirwriter
        self.hold_descriptors()
        before = open_fds()
        writer = self.maildir.newMessage()
        writer.close()
        self.assertEqual(open_fds(), before)
        writer.commit()
        self.assertIn(os.path.basename(writer.final_path), self.files('new'))
        self.assertEqual(maildirwriter._kept,
                         maildirwriter.MaildirMessageWriter.keep_open)


class WriteAtomicallyTests(WriterTestBase):

    def test_a_link_at_the_temporary_name_is_not_followed(self):
        from zope.sendmail.stores.maildir.privatefiles import write_atomically
        target = os.path.join(self.tmp, 'precious')
        with open(target, 'wb') as f:
            f.write(b'precious\n')
        path = os.path.join(self.queue, 'new', '.reason-X')
        tmp = os.path.join(self.queue, 'new', f'.tmp-{os.getpid()}-'
                           f'{threading.get_ident()}-.reason-X')
        os.symlink(target, tmp)
        write_atomically(path, b'reason\n')
        with open(target, 'rb') as f:
            self.assertEqual(f.read(), b'precious\n')
        self.assertEqual(self.read('new', '.reason-X'), b'reason\n')
        self.assertEqual(self.files('new'), ['.reason-X'])
