"""The Maildir store passes the store contract, on real directories; and
what is its own: odd entries, folder objects of 7.3's kind."""
import os
import shutil
import tempfile
import unittest

from zope.sendmail.stores.tests.contract import QueueStoreContract


class MaildirStoreContractTests(QueueStoreContract, unittest.TestCase):

    def make_store(self):
        from zope.sendmail.stores import open_store
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-store-')
        self.addCleanup(shutil.rmtree, tmp, True)
        self.child_queue = os.path.join(tmp, 'queue')
        return open_store(self.child_queue)

    def reopen(self, store):
        from zope.sendmail.stores import open_store
        return open_store(store.path)


class MaildirStoreTests(unittest.TestCase):
    """What only the Maildir store has: files that are no message, and
    folder objects of 7.3's kind."""

    def setUp(self):
        from zope.sendmail.stores import open_store
        from zope.testing.loggingsupport import InstalledHandler
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-store-')
        self.addCleanup(shutil.rmtree, tmp, True)
        self.queue = os.path.join(tmp, 'queue')
        self.store = open_store(self.queue)
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)

    def write(self, name, data, sub='new'):
        path = os.path.join(self.queue, sub, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def test_an_unreadable_file_says_what_is_wrong_not_what_it_holds(self):
        from zope.sendmail.interfaces import UnreadableMessageError
        path = self.write('1.M1P1Q1.junk', b'SECRET\nSECRET\n')
        [entry] = self.store.due().entries
        held = self.store.claim(entry)
        self.addCleanup(held.release)
        with self.assertRaises(UnreadableMessageError) as caught:
            held.read()
        self.assertEqual(str(caught.exception),
                         'unreadable queue file 1.M1P1Q1.junk: queue file'
                         ' does not start with an X-Zope-From line')
        self.assertEqual(caught.exception.what,
                         f'unreadable queue file {path}')
        held.reject(str(caught.exception))
        self.assertEqual(held.rejected_as, '.rejected-1.M1P1Q1.junk')
        self.assertEqual(sorted(os.listdir(os.path.join(self.queue, 'new'))),
                         ['.reason-1.M1P1Q1.junk', '.rejected-1.M1P1Q1.junk'])

    def test_what_is_no_message_is_skipped_and_said_once(self):
        os.mkfifo(os.path.join(self.queue, 'new', '1.M1P1Q1.fifo'))
        for n in range(3):
            self.assertEqual(self.store.due().entries, [])
        [record] = self.log.records
        self.assertIn("skipped 'new/1.M1P1Q1.fifo': it is a FIFO",
                      record.getMessage())
        self.assertEqual(self.store.others(),
                         [('new/1.M1P1Q1.fifo', 'a FIFO')])
        self.assertEqual(self.store.status().others, 1)

    def test_status_of_a_queue_removed_under_it_is_an_error(self):
        from zope.sendmail.interfaces import QueueError
        self.assertEqual(self.store.status().counts['queued'], 0)
        shutil.rmtree(self.queue)
        with self.assertRaisesRegex(QueueError, 'its directory is gone'):
            self.store.status()

    def test_a_folder_of_73s_kind_is_listed_by_its_iteration(self):
        from zope.sendmail.stores import open_store
        listed = self.write('1.M1P1Q1.host', b'X-Zope-From: a@x.org\n'
                            b'X-Zope-To: b@x.org\n\nSubject: s\r\n\r\n')
        self.write('1.M1P1Q2.host', b'X-Zope-From: a@x.org\n'
                   b'X-Zope-To: c@x.org\n\nSubject: s\r\n\r\n')
        store = open_store(Folder73([listed]))
        self.assertIsNone(store.path)
        [entry] = store.due().entries
        self.assertEqual(entry.key, listed)
        held = store.claim(entry)
        self.assertEqual(held.read()[1], ('b@x.org',))
        held.complete()
        self.assertEqual(store.due().entries, [])
        self.assertTrue(store.acquire())
        store.housekeeping()  # its own business: nothing done


class Folder73:
    """What 7.3's thread was given by setMaildir: an iterable of paths."""

    def __init__(self, paths):
        self.paths = paths

    def __iter__(self):
        return iter([p for p in self.paths if os.path.exists(p)])
