"""Tests of the mail events and their dispatch outside the commit."""
import threading
import unittest

import transaction
import zope.event
from zope.testing.loggingsupport import InstalledHandler


class EventTests(unittest.TestCase):

    def test_provide_interfaces(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.events import MailErrorEvent
        from zope.sendmail.events import MailSentEvent
        from zope.sendmail.interfaces import IMailErrorEvent
        from zope.sendmail.interfaces import IMailSentEvent
        verifyObject(IMailSentEvent, MailSentEvent('id@x'))
        error = MailErrorEvent('id@x', '550 no')
        verifyObject(IMailErrorEvent, error)
        self.assertEqual(repr(error), '<MailErrorEvent id@x: 550 no>')


class DispatchTests(unittest.TestCase):

    def setUp(self):
        from zope.sendmail.events import EventDispatcher
        self.dispatcher = EventDispatcher('test events')
        self.seen = []
        self.saved = zope.event.subscribers[:]
        zope.event.subscribers[:] = [self.subscriber]
        self.log = InstalledHandler('zope.sendmail.events')

    def tearDown(self):
        self.dispatcher.stop()
        zope.event.subscribers[:] = self.saved
        self.log.uninstall()
        transaction.abort()

    def subscriber(self, event):
        self.seen.append((event, threading.current_thread().name,
                          transaction.get()))
        if event == 'fail':
            raise ValueError('subscriber bug')

    def test_delivered_in_order_in_another_thread(self):
        for n in range(20):
            self.dispatcher.dispatch(n)
        self.assertTrue(self.dispatcher.flush(5))
        self.assertEqual([e for e, t, x in self.seen], list(range(20)))
        self.assertEqual({t for e, t, x in self.seen}, {'test events'})
        # Each in a transaction of its own:
        self.assertEqual(len({id(x) for e, t, x in self.seen}), 20)

    def test_failing_subscriber_is_logged(self):
        self.dispatcher.dispatch('fail')
        self.dispatcher.dispatch('next')
        self.assertTrue(self.dispatcher.flush(5))
        self.assertEqual([e for e, t, x in self.seen], ['fail', 'next'])
        [record] = self.log.records
        self.assertEqual(record.getMessage(), "subscriber failed on 'fail'")

    def test_uncommitted_work_is_aborted(self):
        from zope.sendmail.events import deliver
        manager = transaction.TransactionManager()
        joined = []

        def subscriber(event):
            joined.append(manager.get())
        zope.event.subscribers[:] = [subscriber]
        deliver('e', manager)
        self.assertIsNot(manager.get(), joined[0])

    def test_stop_delivers_what_is_pending_and_ends_the_thread(self):
        self.dispatcher.dispatch(1)
        self.dispatcher.stop(5)
        self.assertEqual([e for e, t, x in self.seen], [1])
        self.assertFalse(any(t.name == 'test events'
                             for t in threading.enumerate()))
        self.dispatcher.dispatch(2)  # starts again
        self.assertTrue(self.dispatcher.flush(5))
        self.assertEqual([e for e, t, x in self.seen], [1, 2])

    def test_flush_without_events(self):
        self.assertTrue(self.dispatcher.flush(0.1))


class SingleMessageConnectionTests(unittest.TestCase):

    def _makeOne(self, mailer):
        from zope.sendmail.smtp.single import SingleMessageConnection
        return SingleMessageConnection(mailer)

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailerConnection
        verifyObject(IMailerConnection, self._makeOne(None))

    def test_classifies_smtplib_errors(self):
        import smtplib

        from zope.sendmail.interfaces import PermanentDeliveryError
        from zope.sendmail.interfaces import TemporaryDeliveryError

        class Mailer:
            def __init__(self, error):
                self.error = error

            def send(self, *args):
                raise self.error
        cases = [
            (smtplib.SMTPRecipientsRefused({'a@x': (550, b'no')}),
             PermanentDeliveryError),
            (smtplib.SMTPDataError(451, b'later'), TemporaryDeliveryError),
            (ConnectionResetError('reset'), TemporaryDeliveryError),
        ]
        for error, cls in cases:
            with self.assertRaises(cls):
                self._makeOne(Mailer(error)).send('f@x', ['a@x'], b'')
        with self.assertRaises(KeyError):
            self._makeOne(Mailer(KeyError('bug'))).send('f@x', ['a@x'], b'')
