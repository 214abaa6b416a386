"""Tests of the helpers for applications' tests."""
import unittest

import transaction


class RecordingMailerTests(unittest.TestCase):

    def _makeOne(self):
        from zope.sendmail.testing import RecordingMailer
        return RecordingMailer()

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        transaction.abort()
        dispatcher.stop()

    def test_provides_interfaces(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailer
        from zope.sendmail.interfaces import IMailerConnection
        mailer = self._makeOne()
        verifyObject(IMailer, mailer)
        with mailer.connect() as connection:
            verifyObject(IMailerConnection, connection)

    def test_records_what_a_delivery_sends(self):
        from zope.sendmail.delivery import DirectMailDelivery
        mailer = self._makeOne()
        delivery = DirectMailDelivery(mailer)
        message_id = delivery.send('a@example.com', ['b@example.com'],
                                   'Subject: Caf\u00e9\n\nbody\n')
        self.assertEqual(mailer.outbox, [])
        transaction.commit()
        [sent] = mailer.outbox
        self.assertEqual(sent.messageId, message_id)
        self.assertEqual((sent.fromaddr, sent.toaddrs),
                         ('a@example.com', ('b@example.com',)))
        self.assertEqual(sent.message['Subject'], 'Caf\u00e9')
        self.assertIn(message_id, repr(sent))
        mailer.clear()
        self.assertEqual(mailer.outbox, [])

    def test_abort_records_nothing(self):
        from zope.sendmail.delivery import DirectMailDelivery
        mailer = self._makeOne()
        DirectMailDelivery(mailer).send('a@x', ['b@x'], b'Subject: x\n\n')
        transaction.abort()
        self.assertEqual(mailer.outbox, [])
