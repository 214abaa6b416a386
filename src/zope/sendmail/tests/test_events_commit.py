"""Direct delivery's events reach subscribers only once the sending
transaction has committed, never for a failed commit, and not lost when
the interpreter exits right after the commit (a cron script)."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

import transaction
import zope.event
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import RefusingDataManager
from zope.sendmail.tests.support import child_env


class SlowFinisher:
    """A data manager finishing after the mail's, slowly: time for a
    subscriber notified too early to run inside the commit.  With *fail*
    its tpc_finish fails, after the mail went out."""

    transaction_manager = None

    def __init__(self, fail=False):
        self.fail = fail

    def sortKey(self):
        return '~~~~'

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_abort = abort

    def tpc_finish(self, txn):
        time.sleep(0.3)
        if self.fail:
            raise OSError('storage gone after the vote')


class AfterCommitTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        from zope.sendmail.events import dispatcher
        from zope.sendmail.smtp.mailer import SMTPMailer
        transaction.abort()
        self.seen = []
        self.saved = zope.event.subscribers[:]
        zope.event.subscribers[:] = [self.subscriber]
        self.addCleanup(zope.event.subscribers.__setitem__, slice(None),
                        self.saved)
        self.addCleanup(dispatcher.stop)
        from zope.sendmail.smtp.connectioncache import clear_all
        self.addCleanup(clear_all)  # the idle connection, its thread
        self.addCleanup(transaction.abort)
        server = self.layer.server
        self.mailer = SMTPMailer(server.host, server.port, timeout=5)
        self.txn = None

    def subscriber(self, event):
        self.seen.append((event, self.txn.status))

    def _send(self, other=None):
        from zope.sendmail.delivery import DirectMailDelivery
        self.txn = transaction.get()
        message_id = DirectMailDelivery(self.mailer).send(
            'a@example.com', ['b@example.com'], b'Subject: hi\r\n\r\nHi\r\n')
        if other is not None:
            self.txn.join(other)
        return message_id

    def _flush(self):
        from zope.sendmail.events import dispatcher
        self.assertTrue(dispatcher.flush(10))

    def test_subscriber_sees_the_sending_transaction_Committed(self):
        message_id = self._send(SlowFinisher())
        transaction.commit()
        self._flush()
        [(event, status)] = self.seen
        self.assertEqual(event.messageId, message_id)
        self.assertEqual(status, 'Committed')

    def test_failed_commit_notifies_no_event(self):
        log = InstalledHandler('zope.sendmail.delivery')
        self.addCleanup(log.uninstall)
        message_id = self._send(SlowFinisher(fail=True))
        with self.assertRaises(Exception):
            transaction.commit()
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)
        self._flush()
        self.assertEqual(self.seen, [])
        [warning] = [r for r in log.records if r.levelname == 'WARNING']
        self.assertIn(message_id, warning.getMessage())

    def test_refused_vote_notifies_no_event(self):
        self._send(RefusingDataManager())
        with self.assertRaisesRegex(RuntimeError, 'refuses to commit'):
            transaction.commit()
        self._flush()
        self.assertEqual(self.seen, [])
        self.assertEqual(self.layer.server.messages, [])


CRON_SCRIPT = '''\
import sys, time
import transaction, zope.event
from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.smtp.mailer import SMTPMailer

host, port, out, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], \\
    float(sys.argv[4])

def record(event):
    time.sleep(delay)  # a slow subscriber, writing to a database say
    with open(out, 'a') as f:
        f.write(repr(event) + '\\n')

zope.event.subscribers.append(record)
delivery = DirectMailDelivery(SMTPMailer(host, port, timeout=5))
delivery.send('cron@example.com', ['b@example.com'],
              b'Message-Id: <cron@example.com>\\r\\nSubject: cron\\r\\n\\r\\n')
transaction.commit()
# The script ends at once, as a cron job does.
'''


class ExitFlushTests(unittest.TestCase):

    layer = SMTPServerLayer

    def _run_cron(self, delay):
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, 'cron.py')
            out = os.path.join(tmp, 'events.txt')
            with open(script, 'w') as f:
                f.write(CRON_SCRIPT)
            server = self.layer.server
            started = time.monotonic()
            child = subprocess.run(
                [sys.executable, script, server.host, str(server.port), out,
                 str(delay)], env=child_env(), capture_output=True,
                text=True, timeout=60)
            elapsed = time.monotonic() - started
            events = ''
            if os.path.exists(out):
                with open(out) as f:
                    events = f.read()
        return child, events, elapsed

    def test_events_pending_at_exit_are_delivered(self):
        child, events, elapsed = self._run_cron(delay=0.5)
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(events, '<MailSentEvent cron@example.com>\n')
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)

    def test_exit_waits_a_few_seconds_at_most(self):
        from zope.sendmail.events import EXIT_TIMEOUT
        child, events, elapsed = self._run_cron(delay=600)
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(events, '')
        self.assertLess(elapsed, EXIT_TIMEOUT + 20)
        self.assertIn('1 mail event(s) not delivered', child.stderr)
