"""Tests of DirectMailDelivery over the wire, in real transactions."""
import os
import shutil
import tempfile
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.smtp.connectioncache import clear_all
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import RefusingDataManager


class DirectMailDeliveryTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.log = InstalledHandler('zope.sendmail')

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        transaction.abort()
        self.log.uninstall()

    def _getTargetClass(self):
        from zope.sendmail.delivery import DirectMailDelivery
        return DirectMailDelivery

    def _makeOne(self, mailer=None, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        if mailer is None:
            mailer = SMTPMailer(server.host, server.port, timeout=5)
        self.addCleanup(clear_all)  # the connection it keeps, its thread
        return self._getTargetClass()(mailer, **kw)

    def _send(self, delivery, subject, toaddrs=('bob@example.com',)):
        return delivery.send('alice@example.com', list(toaddrs),
                             b'Subject: %s\n\nbody\n' % subject.encode())

    def _messages(self, level=None):
        return [r.getMessage() for r in self.log.records
                if level is None or r.levelname == level]

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IDirectMailDelivery
        verifyObject(IDirectMailDelivery, self._makeOne())

    def test_nothing_is_sent_before_commit(self):
        server = self.layer.server
        self._send(self._makeOne(), 'one')
        self.assertEqual(server.connections, 0)
        transaction.commit()
        self.assertEqual(len(server.messages), 1)

    def test_abort_sends_nothing(self):
        server = self.layer.server
        self._send(self._makeOne(), 'one')
        transaction.abort()
        self.assertEqual(server.connections, 0)
        self.assertEqual(server.messages, [])

    def test_one_connection_for_many_messages_and_none_left_open(self):
        server = self.layer.server
        delivery = self._makeOne()
        ids = [self._send(delivery, 'm%d' % i) for i in range(10)]
        transaction.commit()
        self.assertEqual(server.connections, 1)
        self.assertEqual(len(server.messages), 10)
        server.wait_until_idle()
        for message_id, message in zip(ids, server.messages):
            self.assertTrue(message.data.startswith(
                b'Message-Id: <%s>\r\n' % message_id.encode()))
            self.assertNotIn(b'\n', message.data.replace(b'\r\n', b''))
            self.assertEqual(message.mail_from, 'alice@example.com')
            self.assertEqual(message.rcpt_tos, ['bob@example.com'])
        self.assertEqual(len(self._messages('INFO')), 10)
        self.assertIn('message %s from alice@example.com to bob@example.com'
                      ' sent' % ids[0], self._messages('INFO')[0])

    def test_successive_transactions_reuse_one_connection(self):
        server = self.layer.server
        delivery = self._makeOne()
        for i in range(3):
            self._send(delivery, 'm%d' % i)
            transaction.commit()
        self.assertEqual(server.connections, 1)
        self.assertEqual(server.open_connections, 1)  # idle, for the next
        self.assertEqual(len({m.connection for m in server.messages}), 1)
        delivery.mailer.connection_cache.clear()
        server.wait_until_idle()

    def test_unreachable_relay_aborts_the_transaction(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.tests.support import closed_port
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        from zope.sendmail.delivery import QueuedMailDelivery
        queued = QueuedMailDelivery(os.path.join(tmp, 'queue'))
        direct = self._makeOne(SMTPMailer('127.0.0.1', closed_port()))
        queued.send('alice@example.com', ['bob@example.com'], b'S: x\n\n')
        self._send(direct, 'lost')
        with self.assertRaises(TemporaryDeliveryError):
            transaction.commit()
        transaction.abort()
        # The other data manager of the transaction committed nothing.
        self.assertEqual(os.listdir(os.path.join(tmp, 'queue', 'new')), [])
        self.assertEqual(os.listdir(os.path.join(tmp, 'queue', 'tmp')), [])

    def test_refused_recipient_is_logged_with_the_message_id(self):
        server = self.layer.server
        message_id = self._send(self._makeOne(), 'partly',
                                ['bob@example.com', 'reject@example.com'])
        transaction.commit()
        self.assertEqual(server.messages[0].rcpt_tos, ['bob@example.com'])
        [error] = self._messages('ERROR')
        self.assertIn('message %s: recipients refused: reject@example.com:'
                      ' 550' % message_id, error)

    def test_failure_after_vote_is_logged_never_raised(self):
        server = self.layer.server
        delivery = self._makeOne()
        first = self._send(delivery, 'refused', ['reject@example.com'])
        server.drop_at, server.drop_once = 'dot', True
        second = self._send(delivery, 'dropped')
        third = self._send(delivery, 'fine')
        transaction.commit()  # does not raise
        errors = self._messages('ERROR')
        self.assertEqual(len(errors), 2)
        self.assertIn('message %s from alice@example.com to'
                      ' reject@example.com not delivered: all recipients'
                      ' refused' % first, errors[0])
        self.assertIn('message %s' % second, errors[1])
        self.assertEqual(len(server.messages), 1)
        self.assertIn(third.encode(), server.messages[0].data)
        server.wait_until_idle()

    def test_savepoint_rollback(self):
        server = self.layer.server
        delivery = self._makeOne()
        self._send(delivery, 'kept')
        savepoint = transaction.savepoint()
        self._send(delivery, 'dropped')
        savepoint.rollback()
        transaction.commit()
        self.assertEqual(len(server.messages), 1)
        self.assertIn(b'Subject: kept', server.messages[0].data)

    def test_everything_rolled_back_contacts_no_relay(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.tests.support import closed_port
        delivery = self._makeOne(SMTPMailer('127.0.0.1', closed_port()))
        savepoint = transaction.savepoint()
        self._send(delivery, 'dropped')
        savepoint.rollback()
        transaction.commit()  # the unreachable relay is never asked

    def test_explicit_transaction_manager(self):
        server = self.layer.server
        manager = transaction.TransactionManager()
        delivery = self._makeOne(transaction_manager=manager)
        self._send(delivery, 'mine')
        transaction.commit()
        self.assertEqual(server.messages, [])
        manager.commit()
        self.assertEqual(len(server.messages), 1)

    def test_mailer_with_only_the_imailer_methods(self):
        mailer = RecordingMailer()
        delivery = self._makeOne(mailer)
        self._send(delivery, 'a')
        self._send(delivery, 'b')
        transaction.commit()
        self.assertEqual([c[0] for c in mailer.calls],
                         ['vote', 'send', 'send'])
        self._send(delivery, 'c')
        transaction.abort()
        self.assertEqual(mailer.calls[-1][0], 'send')
        self._send(delivery, 'd')
        transaction.get().join(RefusingDataManager())
        with self.assertRaises(RuntimeError):
            transaction.commit()
        transaction.abort()
        self.assertEqual([c[0] for c in mailer.calls[-2:]],
                         ['vote', 'abort'])


class RecordingMailer:
    """An IMailer with nothing but send, vote and abort."""

    def __init__(self):
        self.calls = []

    def vote(self, fromaddr, toaddrs, message):
        self.calls.append(('vote', fromaddr, toaddrs))

    def send(self, fromaddr, toaddrs, message):
        self.calls.append(('send', fromaddr, toaddrs))

    def abort(self):
        self.calls.append(('abort',))
