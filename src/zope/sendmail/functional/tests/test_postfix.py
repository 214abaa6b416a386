"""End-to-end tests against a real Postfix relay (`PostfixLayer`).

Mail goes from a delivery through this package's queue processor (in a
thread, and in the ``zope-sendmail`` program) or directly, over STARTTLS
verified against the layer's CA, into Postfix, which delivers it into its
sink Maildir; the tests read it back there and check what became of the
refused (550) and deferred (451) messages in our queue.  Without root and
an installed Postfix the tests are skipped, and the layer never set up;
so they are with ZOPE_SENDMAIL_POSTFIX_TESTS=0 in the environment.
The module takes about 3-4 s: 2-2.6 s to start Postfix, under 1 s of tests.
"""
import os
import re
import subprocess
import sys
import time

import transaction

from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.stores.maildir.envelope import parse_envelope
from zope.sendmail.processing.thread import QueueProcessorThread
from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postfix import PostfixTestBase


_console = []


class QueueProcessorTests(PostfixTestBase):

    def test_thread_delivers_refuses_and_defers(self):
        thread = QueueProcessorThread(mailer=self.mailer(),
                                      queuePath=self.queue, interval=0.1)
        thread.start()
        self.addCleanup(thread.stop, 10)
        ids = self.queue_some([['ok1@example.org'], ['ok2@example.net'],
                               ['reject@example.net'],
                               ['tempfail@example.org'],
                               ['ok3@example.com']])
        delivered = self.layer.wait_for(3)
        self.assertArrivedOnce(ids[:2] + ids[4:], delivered)
        self.assertEqual(
            sorted(m['Delivered-To'] for m in delivered),
            ['ok1@example.org', 'ok2@example.net', 'ok3@example.com'])
        self.assertTrue(wait_until(
            lambda: self.queue_files('new', '.rejected-') and
            self.queue_files('cur', '.retry-'), timeout=10),
            os.listdir(self.queue))
        self.assertTrue(thread.stop(10))
        self.assertRefusedAndDeferred()

    def test_some_recipients_refused_none_twice(self):
        processor = QueueProcessorThread(mailer=self.mailer(),
                                         queuePath=self.queue, interval=0.1)
        ids = self.queue_some([['ok@example.org', 'reject@example.net',
                                'tempfail@example.org']])
        result = processor.process_once()
        self.assertEqual(result.counts['deferred'], 1, result)
        delivered = self.layer.wait_for(1)
        self.assertArrivedOnce(ids, delivered)
        self.assertEqual(delivered[0]['Delivered-To'], 'ok@example.org')
        # Only the recipient refused for now is left to retry.
        deferred, = self.queue_files('cur')
        path = os.path.join(self.queue, 'cur', deferred)
        with open(path, 'rb') as f:
            self.assertEqual(list(parse_envelope(f.read())[1]),
                             ['tempfail@example.org'])
        # The retry, once due, must not send it to ok@ again.
        os.utime(path, (time.time(), time.time() - 1))
        result = processor.process_once()
        self.assertEqual(result.counts['deferred'], 1, result)
        self.assertEqual(len(self.layer.wait_for(1)), 1)
        self.assertEqual(self.queue_files('cur'), [deferred])


class ConsoleTests(PostfixTestBase):

    def zope_sendmail(self, expected_status):
        layer = self.layer
        done = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console',
             '--hostname', layer.host, '--port', str(layer.port),
             '--force-tls', '--tls-ca-file', layer.ca_file, self.queue],
            capture_output=True, text=True, env=child_env(), timeout=120)
        self.assertEqual(done.returncode, expected_status,
                         done.stdout + done.stderr)

    def test_zope_sendmail_program(self):
        ids = self.queue_some([['ok1@example.org'], ['tempfail@example.org'],
                               ['ok2@example.org']])
        # 75 (EX_TEMPFAIL): a message waits in the queue for a later try.
        self.zope_sendmail(75)
        self.assertArrivedOnce([ids[0], ids[2]], self.layer.wait_for(2))
        self.queue_some([['reject@example.net']])
        # 1: a message was refused for good, and set aside.  The deferred
        # one is not due yet, so nothing more arrives.
        self.zope_sendmail(1)
        self.assertEqual(len(self.layer.wait_for(2)), 2)
        self.assertRefusedAndDeferred()


class DirectDeliveryTests(PostfixTestBase):

    def test_one_transaction_one_connection(self):
        before = len(self.layer.server.log())
        delivery = DirectMailDelivery(self.mailer())
        ids = [self.send(delivery, n, [f'direct{n}@example.org'])
               for n in range(2)]
        transaction.commit()
        self.assertArrivedOnce(ids, self.layer.wait_for(2))
        from zope.sendmail.smtp.connectioncache import clear_all
        clear_all()  # QUIT to the connection kept for a next transaction

        def log():
            return self.layer.server.log()[before:]

        def sessions():
            # The commands of each SMTP session that sent mail.
            return re.findall(r'disconnect from .* (mail=\d+)', log())
        # postlogd writes the log asynchronously: wait for the goodbye.
        self.assertTrue(wait_until(sessions, timeout=10), log())
        self.assertEqual(sessions(), ['mail=2'], log())
        self.assertIn('TLS connection established from', log())
