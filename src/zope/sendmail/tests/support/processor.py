"""One queue processor at a time, against the test SMTP server:
`ProcessorTestBase` builds it on a fresh queue with a given clock and
retry policy, queues messages and reads back the files and events."""
import os
import shutil
import tempfile
import time
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer


class ProcessorTestBase(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')
        self.events = []
        self.log = InstalledHandler('zope.sendmail.processing.processor',
                                    'zope.sendmail.processing.disposition')
        self.now = time.time()

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        self.log.uninstall()
        transaction.abort()
        shutil.rmtree(self.tmp)

    def _getTargetClass(self):
        from zope.sendmail.processing.processor import QueueProcessor
        return QueueProcessor

    def _makeOne(self, mailer=None, **kw):
        from zope.sendmail.processing.retry import RetryPolicy
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.stores import open_store
        server = self.layer.server
        if mailer is None:
            mailer = SMTPMailer(server.host, server.port, timeout=5)
        kw.setdefault('retry', RetryPolicy(first=60, factor=2, cap=600,
                                           lifetime=86400))
        kw.setdefault('notify', self.events.append)
        # The store's clock is the one that decides.
        store = open_store(self.queue, clock=kw.pop('clock',
                                                    lambda: self.now))
        return self._getTargetClass()(mailer, store, **kw)

    def _queue(self, *toaddrs_list, subject='test'):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        ids = [delivery.send('alice@example.com', list(toaddrs),
                             b'Subject: %s\n\nbody\n' % subject.encode())
               for toaddrs in toaddrs_list]
        transaction.commit()
        return ids

    def _files(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def _messages(self, sub):
        return [n for n in self._files(sub) if not n.startswith('.')]

    def _events(self):
        return [(type(e).__name__, e.messageId,
                 getattr(e, 'errorMessage', None)) for e in self.events]
