"""Tests of the deliveries' send(): input checks, message ids, and the
queued delivery against a real transaction manager and real directories.
(Direct delivery over the wire: test_direct.py.)"""
import os
import shutil
import tempfile
import unittest

import transaction

from zope.sendmail.tests.support import RefusingDataManager


class QueuedMailDeliveryTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')
        transaction.abort()

    def tearDown(self):
        transaction.abort()
        shutil.rmtree(self.tmp)

    def _getTargetClass(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        return QueuedMailDelivery

    def _makeOne(self, **kw):
        return self._getTargetClass()(self.queue, **kw)

    def _files(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def _read_new(self):
        result = []
        for name in self._files('new'):
            with open(os.path.join(self.queue, 'new', name), 'rb') as f:
                result.append(f.read())
        return result

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IQueuedMailDelivery
        delivery = self._makeOne()
        verifyObject(IQueuedMailDelivery, delivery)
        self.assertEqual(delivery.queuePath, self.queue)

    def test_commit_queues(self):
        delivery = self._makeOne()
        message_id = delivery.send(
            'jim@example.com', ['"Doe, Jane" <jane@example.com>'],
            b'Subject: hi\n\nbody\n')
        self.assertEqual(len(self._files('tmp')), 1)
        self.assertEqual(self._files('new'), [])
        transaction.commit()
        self.assertEqual(self._files('tmp'), [])
        self.assertEqual(self._read_new(), [
            b'X-Zope-From: jim@example.com\n'
            b'X-Zope-To: "Doe, Jane" <jane@example.com>\n'
            b'Message-Id: <' + message_id.encode() + b'>\r\n'
            b'Subject: hi\r\n\r\nbody\r\n'])

    def test_abort_leaves_nothing(self):
        delivery = self._makeOne()
        delivery.send('a@example.com', ['b@example.com'], b'Subject: x\n\n')
        delivery.send('a@example.com', ['b@example.com'], b'Subject: y\n\n')
        transaction.abort()
        self.assertEqual(self._files('tmp'), [])
        self.assertEqual(self._files('new'), [])

    def test_failed_commit_leaves_nothing(self):
        delivery = self._makeOne()
        delivery.send('a@example.com', ['b@example.com'], b'Subject: x\n\n')
        transaction.get().join(RefusingDataManager())
        with self.assertRaisesRegex(RuntimeError, 'refuses to commit'):
            transaction.commit()
        transaction.abort()
        self.assertEqual(self._files('tmp'), [])
        self.assertEqual(self._files('new'), [])

    def test_savepoint_rollback(self):
        delivery = self._makeOne()
        delivery.send('a@example.com', ['b@example.com'], b'Subject: 1\n\n')
        savepoint = transaction.savepoint()
        delivery.send('a@example.com', ['b@example.com'], b'Subject: 2\n\n')
        self.assertEqual(len(self._files('tmp')), 2)
        savepoint.rollback()
        self.assertEqual(len(self._files('tmp')), 1)
        delivery.send('a@example.com', ['b@example.com'], b'Subject: 3\n\n')
        transaction.commit()
        subjects = [m.split(b'Subject: ')[1][:1] for m in self._read_new()]
        self.assertEqual(sorted(subjects), [b'1', b'3'])

    def test_explicit_transaction_manager(self):
        manager = transaction.TransactionManager()
        delivery = self._makeOne(transaction_manager=manager)
        delivery.send('a@example.com', ['b@example.com'], b'Subject: x\n\n')
        transaction.commit()  # the thread's default manager: not ours
        self.assertEqual(self._files('new'), [])
        manager.commit()
        self.assertEqual(len(self._files('new')), 1)

    def test_one_data_manager_per_transaction(self):
        delivery = self._makeOne()
        other = self._getTargetClass()(os.path.join(self.tmp, 'other'))
        for i in range(3):
            delivery.send('a@example.com', ['b@example.com'], b'S: x\n\n')
        other.send('a@example.com', ['b@example.com'], b'S: x\n\n')
        resources = transaction.get()._resources
        self.assertEqual(len(resources), 2)
        self.assertEqual(sorted(len(dm.items) for dm in resources), [1, 3])

    def test_bad_input_queues_nothing_and_joins_nothing(self):
        delivery = self._makeOne()
        good = b'Subject: x\n\n'
        cases = [
            (TypeError, 'sender must be a string', (None, ['b@x'], good)),
            (ValueError, 'sender contains a line break',
             ('a@x\r\nRCPT TO:<evil@x>', ['b@x'], good)),
            (ValueError, 'no recipients', ('a@x', [], good)),
            (TypeError, 'not a single str', ('a@x', 'b@x', good)),
            (TypeError, 'recipient must be a string', ('a@x', [b'b@x'], good)),
            (ValueError, 'recipient contains a line break',
             ('a@x', ['b@x\nBcc: evil@x'], good)),
            (ValueError, 'line break or NUL', ('a@x', ['b\x00@x'], good)),
            (ValueError, 'malformed Message-Id',
             ('a@x', ['b@x'], b'Message-Id: nobrackets@x\n\n')),
            (TypeError, 'message must be bytes', ('a@x', ['b@x'], None)),
        ]
        for exc, text, args in cases:
            with self.subTest(text=text):
                with self.assertRaisesRegex(exc, text):
                    delivery.send(*args)
                self.assertEqual(transaction.get()._resources, [])
        transaction.commit()
        self.assertFalse(os.path.exists(self.queue)
                         and (self._files('tmp') or self._files('new')))

    def test_many_messages_hold_few_file_descriptors(self):
        # Writers keep their descriptors for the commit's check, up to a
        # bound per process; the others are closed.
        from zope.sendmail.stores.maildir.writer import MaildirMessageWriter
        delivery = self._makeOne(durable=False)
        before = len(os.listdir('/proc/self/fd'))
        for i in range(10000):
            delivery.send('a@example.com', ['b@example.com'], b'S: x\n\n')
        during = len(os.listdir('/proc/self/fd'))
        self.assertLessEqual(during, before + MaildirMessageWriter.keep_open
                             + 2)
        transaction.commit()
        self.assertEqual(len(self._files('new')), 10000)
        self.assertLessEqual(len(os.listdir('/proc/self/fd')), before)

    def test_durable_syncs_files_at_vote_and_new_once(self):
        factory = RecordingMaildir.factory()
        delivery = self._makeOne(maildir_factory=factory)
        for i in range(5):
            delivery.send('a@example.com', ['b@example.com'], b'S: x\n\n')
        maildir = factory.instances[0]
        transaction.get().join(CheckpointDataManager(maildir.events))
        transaction.commit()
        self.assertEqual(maildir.events,
                         ['sync'] * 5 + ['other data manager voted']
                         + ['commit'] * 5 + ['sync_new'])

    def test_not_durable_skips_syncs(self):
        factory = RecordingMaildir.factory()
        delivery = self._makeOne(maildir_factory=factory, durable=False)
        delivery.send('a@example.com', ['b@example.com'], b'S: x\n\n')
        transaction.commit()
        self.assertEqual(factory.instances[0].events, ['commit'])
        self.assertEqual(len(self._files('new')), 1)

    def test_tpc_finish_failure_is_logged_not_raised(self):
        from zope.testing.loggingsupport import InstalledHandler
        # What becomes of the queue's files, its store says.
        handler = InstalledHandler('zope.sendmail.delivery',
                                   'zope.sendmail.stores.maildir.store')
        self.addCleanup(handler.uninstall)
        delivery = self._makeOne()
        message_id = delivery.send('a@x.org', ['b@x.org'], b'S: x\n\n')
        transaction.get().join(RemoveNewDataManager(self.queue))
        transaction.commit()
        self.assertEqual(len(handler.records), 2)
        text = handler.records[0].getMessage()
        self.assertIn('message %s committed but not queued' % message_id,
                      text)
        self.assertIn('cannot sync', handler.records[1].getMessage())
        self.assertEqual(len(self._files('tmp')), 1)


from zope.sendmail.stores.maildir.folder import Maildir  # noqa: E402


class RecordingMaildir(Maildir):
    """A real Maildir that records the syncs and renames, in order."""

    @classmethod
    def factory(cls):
        instances = []

        def make(path, create=False):
            instance = cls(path, create)
            instances.append(instance)
            return instance
        make.instances = instances
        return make

    def __init__(self, path, create=False):
        super().__init__(path, create)
        self.events = []

    def newMessage(self):
        writer = super().newMessage()
        events = self.events
        sync, commit = writer.sync, writer.commit

        def recording_sync():
            events.append('sync')
            sync()

        def recording_commit():
            events.append('commit')
            commit()
        writer.sync, writer.commit = recording_sync, recording_commit
        return writer

    def sync_new(self):
        self.events.append('sync_new')
        super().sync_new()


class _BaseDataManager:
    transaction_manager = None

    def sortKey(self):
        return 'a'  # before the mail's data manager

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_finish = tpc_abort = abort

    def tpc_vote(self, txn):
        pass


class CheckpointDataManager(_BaseDataManager):

    def __init__(self, events):
        self.events = events

    def sortKey(self):
        return '~~~'

    def tpc_vote(self, txn):
        self.events.append('other data manager voted')


class RemoveNewDataManager(_BaseDataManager):
    """Removes the queue's new/ between the vote and the finish."""

    def __init__(self, queue):
        self.queue = queue

    def tpc_vote(self, txn):
        os.rmdir(os.path.join(self.queue, 'new'))
