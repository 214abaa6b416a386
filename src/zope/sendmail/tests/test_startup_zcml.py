"""A ``<mail:queuedDelivery>`` arranges its own start, as 7.3's did: a site
including only zope.sendmail's meta.zcml sends its queued mail once the
application starts, and a queue whose thread never starts says so."""
import logging
import os

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.zcml import META_ONLY
from zope.sendmail.tests.support.zcml import ZCMLTestBase


class MetaOnlySiteTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def _load_meta_only(self, body):
        from zope.configuration import xmlconfig
        server = self.layer.server
        xmlconfig.string(META_ONLY % (
            f'<mail:smtpMailer name="relay" hostname="{server.host}"'
            f' port="{server.port}" />' + body))

    def _queued(self, path, name='Mail'):
        return (f'<mail:queuedDelivery name="{name}" mailer="relay"'
                f' queuePath="{path}" interval="0.1" />')

    def _send(self, name='Mail'):
        self._delivery(name).send('a@example.com', ['b@example.com'],
                                  b'Subject: meta.zcml only\n\nHi\n')
        transaction.commit()

    def _start_handlers(self):
        from zope.component import getGlobalSiteManager

        from zope.sendmail.startup import start_processor_threads
        return sorted(r.required[0].__name__ for r in
                      getGlobalSiteManager().registeredHandlers()
                      if r.handler is start_processor_threads)

    def test_meta_zcml_only_site_sends_queued_mail_after_startup(self):
        import zope.event
        from zope.processlifetime import DatabaseOpenedWithRoot
        self._load_meta_only(self._queued(self.queue))
        self._send()
        zope.event.notify(DatabaseOpenedWithRoot(None))
        [message] = self.layer.server.wait_for(1, timeout=10)
        self.assertIn(b'Subject: meta.zcml only', message.data)

    def test_process_starting_starts_it_too(self):
        import zope.event
        from zope.processlifetime import ProcessStarting
        self._load_meta_only(self._queued(self.queue))
        zope.event.notify(ProcessStarting())
        self._send()
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)

    def test_subscribers_registered_once_however_many_queues(self):
        other = os.path.join(self.tmp, 'other')
        self._load_meta_only(self._queued(self.queue) +
                             self._queued(other, name='Other') +
                             self._queued(self.queue, name='Third'))
        self.assertEqual(self._start_handlers(),
                         ['IDatabaseOpenedWithRoot', 'IProcessStarting'])

    def test_subscribers_registered_once_with_configure_zcml(self):
        # configure.zcml subscribes them too; the directive adds none.
        self._load(f'<mail:queuedDelivery mailer="smtp"'
                   f' queuePath="{self.queue}" />')
        self.assertEqual(self._start_handlers(),
                         ['IDatabaseOpenedWithRoot', 'IProcessStarting'])

    def test_no_thread_no_subscribers(self):
        self._load_meta_only(f'<mail:queuedDelivery mailer="relay"'
                             f' queuePath="{self.queue}"'
                             f' processorThread="false" />')
        self.assertEqual(self._start_handlers(), [])

    def _warnings(self):
        from zope.testing.loggingsupport import InstalledHandler
        handler = InstalledHandler('zope.sendmail.startup',
                                   level=logging.WARNING)
        self.addCleanup(handler.uninstall)
        return handler.records

    def test_queue_never_started_warns_once_at_first_commit(self):
        self._load_meta_only(self._queued(self.queue))
        records = self._warnings()
        self._send()
        self._send()
        [record] = records
        text = record.getMessage()
        self.assertIn(self.queue, text)
        self.assertIn('not been started', text)
        self.assertIn('IDatabaseOpenedWithRoot', text)
        self.assertIn('start_processor_threads()', text)
        self.assertEqual(len(os.listdir(os.path.join(self.queue, 'new'))),
                         2)

    def test_no_warning_once_started(self):
        from zope.sendmail.startup import start_processor_threads
        self._load_meta_only(self._queued(self.queue))
        records = self._warnings()
        start_processor_threads()
        self._send()
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)
        self.assertEqual(records, [])

    def test_no_warning_without_processor_thread(self):
        # Another process (a zope-sendmail daemon) sends this queue.
        self._load_meta_only(f'<mail:queuedDelivery mailer="relay"'
                             f' queuePath="{self.queue}"'
                             f' processorThread="false" />')
        records = self._warnings()
        self._send()
        self.assertEqual(records, [])
