"""The lease in the queue processor thread and in the settings."""
import os
import shutil
import tempfile
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.lease import write_lease


class ThreadLeaseTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-lease-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()

    def thread(self, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.thread import QueueProcessorThread
        server = self.layer.server
        settings = dict(lease_timeout=3, lease_renew=0.1, lease_margin=0.6)
        settings.update(kw)
        thread = QueueProcessorThread(
            queuePath=self.queue, mailer=SMTPMailer(server.host, server.port),
            **settings)
        self.addCleanup(thread.stop, 10)
        return thread

    def fill(self, count):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        for n in range(count):
            delivery.send('a@example.com', ['b@example.com'],
                          f'Subject: {n}\n\nbody\n'.encode())
        transaction.commit()

    def test_local_queue_has_no_lease(self):
        thread = self.thread()
        thread.processor
        self.assertIsNone(thread.lease)
        self.fill(1)
        self.assertEqual(dict(thread.process_once().counts), {'sent': 1})
        self.assertNotIn('.processor-lease', os.listdir(self.queue))

    def test_forced_lease(self):
        thread = self.thread(lease='on')
        self.fill(2)
        result = thread.process_once()
        self.assertEqual((dict(result.counts), result.standby),
                         ({'sent': 2}, False))
        self.assertTrue(thread.lease.may_send())
        self.assertTrue(thread.stop(10))
        self.assertNotIn('.processor-lease', os.listdir(self.queue))

    def test_standby_sends_nothing(self):
        thread = self.thread(lease=True)
        self.fill(1)
        write_lease(self.queue, timeout='3')
        result = thread.process_once()
        self.assertTrue(result.standby)
        self.assertEqual(dict(result.counts), {})
        self.assertEqual(self.layer.server.messages, [])

    def test_pass_stops_when_may_send_says_no(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.processor import QueueProcessor
        self.fill(3)
        answers = [True, False]
        server = self.layer.server
        processor = QueueProcessor(
            SMTPMailer(server.host, server.port), Maildir(self.queue),
            connections=1, may_send=lambda: answers.pop(0) if answers
            else False)
        result = processor.process()
        self.assertEqual((dict(result.counts), result.standby),
                         ({'sent': 1}, True))
        self.assertEqual(len(server.messages), 1)

    def test_bad_settings(self):
        with self.assertRaises(ValueError):
            self.thread(lease='sometimes')
        with self.assertRaises(ValueError):
            self.thread(lease_margin=3)

    def test_settings_everywhere(self):
        from zope.sendmail.options import processor_arguments
        arguments = processor_arguments({'lease': 'on',
                                         'lease_timeout': 60.0})
        self.assertEqual(
            [arguments[k] for k in ('lease', 'lease_timeout', 'lease_renew',
                                    'lease_margin')], ['on', 60.0, 10.0, 20.0])
        with self.assertRaises(ValueError) as raised:
            processor_arguments({'lease_renew': 50.0})
        self.assertIn('lease_renew (50 s) must be less than', str(
            raised.exception))

    def test_zcml(self):
        from zope.configuration import xmlconfig
        from zope.configuration.exceptions import ConfigurationError
        zcml = '''<configure xmlns="http://namespaces.zope.org/zope"
                             xmlns:mail="http://namespaces.zope.org/mail">
            <include package="zope.component" file="meta.zcml" />
            <include package="zope.sendmail" file="meta.zcml" />
            <mail:smtpMailer name="smtp" />
            <mail:queuedDelivery name="Mail" queuePath="%s" mailer="smtp"
                processorThread="false" lease="%s" leaseRenew="%s" />
            </configure>'''
        xmlconfig.string(zcml % (self.queue, 'on', '5'))
        for lease, renew in (('maybe', '5'), ('on', '70')):
            with self.assertRaises(ConfigurationError):
                xmlconfig.string(zcml % (self.queue, lease, renew))
