"""What a client of zope.sendmail 7.3 does, against the test SMTP server:
`CompatTestBase` gives a test a queue in 7.3's layout, the
``zope-sendmail`` program run in-process on it, and direct deliveries that
send `MESSAGE` from a transaction.  It cleans up the transaction, the
event dispatcher and the idle connections after each test."""
import contextlib
import io
import os
import shutil
import tempfile
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer


MESSAGE = b'Subject: from a 7.3 client\r\n\r\nHello\r\n'


class CompatTestBase(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-compat73-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.addCleanup(transaction.abort)
        self.queue = os.path.join(self.tmp, 'queue')
        for sub in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(self.queue, sub))
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)
        from zope.sendmail.smtp.connectioncache import clear_all
        self.addCleanup(clear_all)  # the idle connection, its thread

    # The queue, as 7.3's zope-sendmail sees it

    def _path(self, sub, name):
        return os.path.join(self.queue, sub, name)

    def _names(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def _zope_sendmail(self, *args):
        from zope.sendmail.console.program import ConsoleApp
        server = self.layer.server
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = ConsoleApp(['zope-sendmail', '--hostname', server.host,
                                 '--port', str(server.port), *args,
                                 self.queue]).main()
        return status, out.getvalue()

    # Deliveries, as a 7.3 application makes them

    def _direct(self, mailer):
        from zope.sendmail.delivery import DirectMailDelivery
        return DirectMailDelivery(mailer)

    def _send(self, delivery, commit=True):
        message_id = delivery.send('a@example.com', ['b@example.com'],
                                   MESSAGE)
        if commit:
            transaction.commit()
        return message_id

    def _received(self, n=1):
        return self.layer.server.wait_for(n, timeout=10)
