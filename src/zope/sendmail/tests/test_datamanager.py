"""Tests of the data manager's two-phase-commit state machine."""
import unittest


class MailDataManagerTests(unittest.TestCase):

    def _getTargetClass(self):
        from zope.sendmail.datamanager import MailDataManager
        return MailDataManager

    def _makeOne(self, batch=None):
        import transaction
        return self._getTargetClass()(
            batch=batch or DummyBatch(),
            transaction_manager=transaction.TransactionManager())

    def test_provides_interfaces(self):
        from transaction.interfaces import IDataManagerSavepoint
        from transaction.interfaces import ISavepointDataManager
        from zope.interface.verify import verifyObject
        dm = self._makeOne()
        verifyObject(ISavepointDataManager, dm)
        verifyObject(IDataManagerSavepoint, dm.savepoint())

    def test_sort_key_is_a_string_sorting_late(self):
        dm = self._makeOne()
        self.assertIsInstance(dm.sortKey(), str)
        self.assertGreater(dm.sortKey(), 'z' * 3)
        self.assertNotEqual(dm.sortKey(), self._makeOne().sortKey())

    def test_full_protocol(self):
        batch = DummyBatch()
        dm = self._makeOne(batch)
        dm.add('m1')
        dm.add('m2')
        dm.tpc_begin(None)
        dm.commit(None)
        dm.tpc_vote(None)
        self.assertEqual(batch.calls, [('vote', ['m1', 'm2'])])
        dm.tpc_finish(None)
        self.assertEqual(batch.calls[-1], ('finish', ['m1', 'm2']))
        self.assertEqual(dm.state, 'finished')

    def test_wrong_phase_calls_are_rejected(self):
        from zope.sendmail.datamanager import DataManagerStateError
        dm = self._makeOne()
        with self.assertRaisesRegex(
                DataManagerStateError,
                r"tpc_vote\(\) called in state 'active'; it is allowed only"
                r" in state 'committed'"):
            dm.tpc_vote(None)
        with self.assertRaisesRegex(DataManagerStateError, 'tpc_finish'):
            dm.tpc_finish(None)
        with self.assertRaisesRegex(DataManagerStateError, 'commit'):
            dm.commit(None)
        dm.tpc_begin(None)
        with self.assertRaisesRegex(DataManagerStateError, 'add'):
            dm.add('late')
        with self.assertRaisesRegex(DataManagerStateError, 'tpc_begin'):
            dm.tpc_begin(None)
        with self.assertRaisesRegex(DataManagerStateError, 'savepoint'):
            dm.savepoint()

    def test_abort_after_finish_changes_nothing(self):
        # What the transaction package does when another data manager's
        # tpc_finish fails after ours: the mail is out, nothing to undo.
        batch = DummyBatch()
        dm = self._makeOne(batch)
        dm.add('m1')
        dm.tpc_begin(None)
        dm.commit(None)
        dm.tpc_vote(None)
        dm.tpc_finish(None)
        dm.tpc_abort(None)
        dm.abort(None)
        self.assertEqual(dm.state, 'finished')
        self.assertEqual([call[0] for call in batch.calls],
                         ['vote', 'finish'])

    def test_failing_vote_leaves_it_abortable(self):
        batch = DummyBatch(fail_vote=True)
        dm = self._makeOne(batch)
        dm.add('m1')
        dm.tpc_begin(None)
        dm.commit(None)
        with self.assertRaisesRegex(RuntimeError, 'vote failed'):
            dm.tpc_vote(None)
        dm.abort(None)
        dm.tpc_abort(None)
        self.assertEqual(batch.calls[-1], ('discard', ['m1']))
        self.assertEqual(dm.state, 'aborted')

    def test_tpc_abort_after_vote_discards(self):
        batch = DummyBatch()
        dm = self._makeOne(batch)
        dm.add('m1')
        dm.tpc_begin(None)
        dm.commit(None)
        dm.tpc_vote(None)
        dm.tpc_abort(None)
        self.assertEqual(batch.calls[-1], ('discard', ['m1']))

    def test_tpc_finish_never_raises(self):
        from zope.testing.loggingsupport import InstalledHandler
        handler = InstalledHandler('zope.sendmail.datamanager')
        self.addCleanup(handler.uninstall)
        dm = self._makeOne(DummyBatch(fail_finish=True))
        dm.add('m1')
        dm.tpc_begin(None)
        dm.commit(None)
        dm.tpc_vote(None)
        dm.tpc_finish(None)
        self.assertEqual(dm.state, 'finished')
        self.assertEqual(len(handler.records), 1)
        self.assertIn('unexpected error after commit',
                      handler.records[0].getMessage())

    def test_savepoint_rollback_discards_later_messages(self):
        batch = DummyBatch()
        dm = self._makeOne(batch)
        dm.add('m1')
        sp1 = dm.savepoint()
        dm.add('m2')
        sp2 = dm.savepoint()
        dm.add('m3')
        sp2.rollback()
        self.assertEqual(batch.calls, [('discard', ['m3'])])
        sp2.rollback()  # again: nothing more to drop
        self.assertEqual(len(batch.calls), 1)
        sp1.rollback()
        self.assertEqual(batch.calls[-1], ('discard', ['m2']))
        self.assertEqual(dm.items, ['m1'])


class DummyBatch:

    def __init__(self, fail_vote=False, fail_finish=False):
        self.calls = []
        self.fail_vote = fail_vote
        self.fail_finish = fail_finish

    def vote(self, items):
        self.calls.append(('vote', list(items)))
        if self.fail_vote:
            raise RuntimeError('vote failed')

    def finish(self, items):
        self.calls.append(('finish', list(items)))
        if self.fail_finish:
            raise RuntimeError('finish failed')

    def discard(self, items):
        self.calls.append(('discard', list(items)))
