"""7.3's delivery API kept: mailers whose ``vote`` or ``abort`` is None or
missing, ``createDataManager``, ``newMessageId`` and 7.3's
``MailDataManager(callable, args=(), vote=None, onAbort=None)``.  Each
test is named after the 7.3 behaviour it keeps."""
import os
import smtplib
import unittest
import warnings

import transaction

from zope.sendmail.tests.support import RefusingDataManager
from zope.sendmail.tests.support.compat73 import MESSAGE
from zope.sendmail.tests.support.compat73 import CompatTestBase


class OldMailer:
    """A mailer written for 7.3's IMailer: plain smtplib, no connect();
    *vote* and *abort* as a class gives them (None, a method, missing)."""

    def __init__(self, server):
        self.server = server
        self.calls = []

    def send(self, fromaddr, toaddrs, message):
        self.calls.append('send')
        with smtplib.SMTP(self.server.host, self.server.port,
                          timeout=5) as smtp:
            smtp.sendmail(fromaddr, toaddrs, message)


class VoteNoneMailer(OldMailer):
    vote = None
    abort = None


class VotingMailer(OldMailer):
    abort = None

    def vote(self, fromaddr, toaddrs, message):
        self.calls.append('vote')


class NoVoteMailer(OldMailer):

    def abort(self):
        self.calls.append('abort')


class OldMailerTests(CompatTestBase):

    def test_mailer_with_vote_and_abort_None_sends_without_them(self):
        mailer = VoteNoneMailer(self.layer.server)
        self._send(self._direct(mailer))
        self.assertEqual(len(self._received()), 1)
        self.assertEqual(mailer.calls, ['send'])

    def test_mailer_with_abort_None_survives_an_aborted_commit(self):
        mailer = VotingMailer(self.layer.server)
        self._send(self._direct(mailer), commit=False)
        transaction.get().join(RefusingDataManager())
        with self.assertRaisesRegex(RuntimeError, 'refuses to commit'):
            transaction.commit()
        self.assertEqual(mailer.calls, ['vote'])
        self.assertEqual(self.layer.server.messages, [])

    def test_mailer_without_vote_warns_DeprecationWarning_and_sends(self):
        mailer = NoVoteMailer(self.layer.server)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            self._send(self._direct(mailer))
        [warning] = [w for w in caught
                     if issubclass(w.category, DeprecationWarning)]
        self.assertIn('has no vote method', str(warning.message))
        self.assertEqual(len(self._received()), 1)
        self.assertEqual(mailer.calls, ['send'])

    def test_queue_processor_sends_through_a_mailer_with_vote_None(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.queue import QueueProcessorThread
        queue = os.path.join(self.tmp, 'queue')
        self._send(QueuedMailDelivery(queue))
        mailer = VoteNoneMailer(self.layer.server)
        QueueProcessorThread(mailer=mailer, queuePath=queue).run(
            forever=False)
        self.assertEqual(len(self._received()), 1)
        self.assertEqual(mailer.calls, ['send'])


class CreateDataManagerTests(CompatTestBase):

    def test_createDataManager_returns_a_data_manager_to_join(self):
        from zope.sendmail.mailer import SMTPMailer
        server = self.layer.server
        delivery = self._direct(SMTPMailer(server.host, server.port))
        data_manager = delivery.createDataManager(
            'a@example.com', ['b@example.com'], MESSAGE)
        self.assertEqual(server.messages, [])
        transaction.get().join(data_manager)
        transaction.commit()
        [message] = self._received()
        self.assertIn(b'Message-Id: <', message.data)

    def test_createDataManager_of_a_queued_delivery_queues_at_commit(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        queue = os.path.join(self.tmp, 'queue')
        data_manager = QueuedMailDelivery(queue).createDataManager(
            'a@example.com', ['b@example.com'], MESSAGE)
        self.assertEqual(os.listdir(os.path.join(queue, 'new')), [])
        transaction.get().join(data_manager)
        transaction.commit()
        self.assertEqual(len(os.listdir(os.path.join(queue, 'new'))), 1)

    def test_subclass_overriding_createDataManager_is_joined_by_send(self):
        from zope.sendmail.delivery import AbstractMailDelivery
        from zope.sendmail.delivery import MailDataManager
        calls = []

        class Delivery73(AbstractMailDelivery):
            # 7.3's way to write a delivery: no __init__ of the base.
            def createDataManager(self, fromaddr, toaddrs, message):
                return MailDataManager(
                    lambda *args: calls.append(('sent',) + args),
                    args=(fromaddr, toaddrs, message),
                    onAbort=lambda: calls.append('aborted'))

        message_id = Delivery73().send('a@example.com', ['b@example.com'],
                                       MESSAGE)
        self.assertEqual(calls, [])
        transaction.commit()
        [(sent, fromaddr, toaddrs, message)] = calls
        self.assertEqual((fromaddr, list(toaddrs)),
                         ('a@example.com', ['b@example.com']))
        self.assertTrue(message.startswith(
            b'Message-Id: <%s>\r\n' % message_id.encode()))
        del calls[:]
        Delivery73().send('a@example.com', ['b@example.com'], MESSAGE)
        transaction.abort()
        self.assertEqual(calls, ['aborted'])

    def test_newMessageId_makes_unique_ids_that_send_uses(self):
        from zope.sendmail.delivery import QueuedMailDelivery

        class Numbered(QueuedMailDelivery):
            def newMessageId(self):
                return 'number-7@example.com'

        delivery = QueuedMailDelivery(os.path.join(self.tmp, 'queue'))
        first, second = delivery.newMessageId(), delivery.newMessageId()
        self.assertNotEqual(first, second)
        self.assertIn('@', first)
        self.assertNotIn('<', first)
        self.assertEqual(self._send(Numbered(delivery.queuePath)),
                         'number-7@example.com')


class MailDataManager73Tests(unittest.TestCase):
    """``MailDataManager(callable, args=(), vote=None, onAbort=None)``."""

    def _makeOne(self, *args, **kw):
        from zope.sendmail.delivery import MailDataManager
        return MailDataManager(*args, **kw)

    def setUp(self):
        transaction.abort()
        self.calls = []
        self.addCleanup(transaction.abort)

    def _record(self, name):
        return lambda *args: self.calls.append((name,) + args)

    def test_MailDataManager_has_73s_attributes(self):
        from transaction.interfaces import ISavepointDataManager
        from zope.interface.verify import verifyObject
        send, vote, on_abort = (self._record(n) for n in 'sva')
        dm = self._makeOne(send, ('x', 'y'), vote, on_abort)
        verifyObject(ISavepointDataManager, dm)
        self.assertEqual((dm.callable, dm.args, dm.vote, dm.onAbort),
                         (send, ('x', 'y'), vote, on_abort))
        self.assertIs(dm.transaction_manager, transaction.manager)

    def test_MailDataManager_votes_then_calls_callable_at_commit(self):
        dm = self._makeOne(self._record('call'), args=(1, 2),
                           vote=self._record('vote'),
                           onAbort=self._record('abort'))
        transaction.get().join(dm)
        transaction.commit()
        self.assertEqual(self.calls, [('vote', 1, 2), ('call', 1, 2)])

    def test_MailDataManager_skips_a_vote_of_None(self):
        transaction.get().join(self._makeOne(self._record('call')))
        transaction.commit()
        self.assertEqual(self.calls, [('call',)])

    def test_MailDataManager_calls_onAbort_on_abort(self):
        transaction.get().join(self._makeOne(
            self._record('call'), onAbort=self._record('abort')))
        transaction.abort()
        self.assertEqual(self.calls, [('abort',)])

    def test_MailDataManager_vote_failure_aborts_the_transaction(self):
        def refuse():
            raise ValueError('relay down')
        transaction.get().join(self._makeOne(
            self._record('call'), vote=refuse,
            onAbort=self._record('abort')))
        with self.assertRaisesRegex(ValueError, 'relay down'):
            transaction.commit()
        self.assertEqual(self.calls, [('abort',)])

    def test_MailDataManager_logs_a_failing_callable_after_commit(self):
        from zope.testing.loggingsupport import InstalledHandler

        def broken():
            raise OSError('disk gone')
        handler = InstalledHandler('zope.sendmail.datamanager')
        self.addCleanup(handler.uninstall)
        transaction.get().join(self._makeOne(broken))
        transaction.commit()  # committed: the failure is only logged
        [record] = handler.records
        self.assertIn('disk gone', record.exc_text or str(record.exc_info))

    def test_MailDataManager_savepoints_keep_the_message(self):
        dm = self._makeOne(self._record('call'))
        transaction.get().join(dm)
        savepoint = transaction.savepoint()
        savepoint.rollback()
        transaction.commit()
        self.assertEqual(self.calls, [('call',)])

    def test_MailDataManager_needs_a_callable_or_a_batch(self):
        with self.assertRaisesRegex(TypeError, 'callable'):
            self._makeOne()
