"""A real Postfix relay (`PostfixLayer`): `PostfixTestBase` queues
messages made by `make_message` for it and checks what arrived, what was
refused and what was deferred.  Without root and an installed Postfix, or
with ZOPE_SENDMAIL_POSTFIX_TESTS=0, its tests are skipped (`UNAVAILABLE`
says why) and the layer is never set up."""
import collections
import glob
import os
import shutil
import tempfile
import unittest
from email.message import EmailMessage

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.events import dispatcher
from zope.sendmail.smtp.mailer import SMTPMailer
from zope.sendmail.stores.maildir.envelope import parse_envelope
from zope.sendmail.testserver.postfix import PostfixLayer
from zope.sendmail.testserver.postfix import postfix_unavailable


# ZOPE_SENDMAIL_POSTFIX_TESTS=0 turns these tests off: .ci/run's runs on
# other Pythons set it, since one run with Postfix is enough.
UNAVAILABLE = ('turned off by ZOPE_SENDMAIL_POSTFIX_TESTS=0'
               if os.environ.get('ZOPE_SENDMAIL_POSTFIX_TESTS') == '0'
               else postfix_unavailable())
SENDER = 'sender@example.com'
SUBJECT = 'Grüße, test {}'  # non-ASCII: an encoded word must survive


def make_message(n):
    message = EmailMessage()
    message['From'] = f'Sender <{SENDER}>'
    message['To'] = 'someone@example.org'
    message['Subject'] = SUBJECT.format(n)
    message.set_content(f'message {n}\n')
    return message


@unittest.skipUnless(UNAVAILABLE is None, UNAVAILABLE)
class PostfixTestBase(unittest.TestCase):

    if UNAVAILABLE is None:
        # Only then: zope.testrunner sets a layer up even when all its
        # tests are skipped.
        layer = PostfixLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-test-postfix-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(transaction.abort)
        # Events outside a processor thread go through the dispatcher's.
        self.addCleanup(dispatcher.stop)
        # What the package logs (refusals, deferrals) is expected here.
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.sent = {}
        self.queue = os.path.join(self.tmp, 'queue')

    def mailer(self):
        return SMTPMailer(self.layer.host, self.layer.port, force_tls=True,
                          tls_ca_file=self.layer.ca_file)

    def queue_some(self, recipients):
        """Queue one message per entry of *recipients*, in one
        transaction; return their message ids."""
        delivery = QueuedMailDelivery(self.queue)
        ids = [self.send(delivery, n, to) for n, to in enumerate(recipients)]
        transaction.commit()
        return ids

    def send(self, delivery, n, recipients):
        message = make_message(n)
        message_id = delivery.send(SENDER, recipients, message)
        self.sent[message_id] = message['Subject']
        return message_id

    def queue_files(self, sub, prefix=''):
        return sorted(os.path.basename(p) for p in glob.glob(
            os.path.join(self.queue, sub, prefix + '*'))
            if prefix or not os.path.basename(p).startswith('.'))

    def assertArrivedOnce(self, ids, delivered):
        """Each of *ids* arrived exactly once, headers as sent, over TLS."""
        by_id = {m['Message-Id']: m for m in delivered}
        self.assertEqual(
            collections.Counter(m['Message-Id'] for m in delivered),
            collections.Counter(f'<{i}>' for i in ids))
        for message_id in ids:
            message = by_id[f'<{message_id}>']
            self.assertEqual(message['From'], f'Sender <{SENDER}>')
            self.assertEqual(message['Subject'], self.sent[message_id])
            self.assertIn('with ESMTPS', message['Received'])
            self.assertIn('by mx.test.local (Postfix)', message['Received'])
            self.assertEqual(message['Return-Path'], f'<{SENDER}>')

    def assertRefusedAndDeferred(self):
        """The reject@ message is set aside with its 550; the tempfail@
        one waits in cur/ with its retry record."""
        rejected = self.queue_files('new', '.rejected-') + \
            self.queue_files('cur', '.rejected-')
        self.assertEqual(len(rejected), 1, rejected)
        name = rejected[0][len('.rejected-'):]
        reasons = glob.glob(os.path.join(self.queue, '*', '.reason-' + name))
        self.assertEqual(len(reasons), 1)
        with open(reasons[0]) as f:
            reason = f.read()
        self.assertIn('550', reason)
        self.assertIn('no such user', reason)
        self.assertIn('reject@example.net', reason)

        self.assertEqual(self.queue_files('new'), [])
        deferred = self.queue_files('cur')
        self.assertEqual(len(deferred), 1, deferred)
        with open(os.path.join(self.queue, 'cur', deferred[0]), 'rb') as f:
            self.assertEqual(list(parse_envelope(f.read())[1]),
                             ['tempfail@example.org'])
        self.assertEqual(self.queue_files('cur', '.retry-'),
                         ['.retry-' + deferred[0]])
        with open(os.path.join(self.queue, 'cur',
                               '.retry-' + deferred[0])) as f:
            self.assertIn('451', f.read())
