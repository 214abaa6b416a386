"""International addresses on the wire, queued and direct: the exact MAIL
and RCPT lines, SMTPUTF8 where offered, set aside where not, no loops."""
import os
import re
import shutil
import tempfile
import unittest

import transaction
import zope.event
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import make_layer
from zope.sendmail.tests.support import wait_until


UTF8Layer = make_layer('UTF8Layer', 'SMTP test server offering SMTPUTF8.',
                       smtputf8=True)

# The three addresses of the issue, and the recipients that looped.
SENDER = 'shöp@example.com'
RECIPIENTS = ['jörg@example.com', 'ann@bücher.example']
LOOPED = ['Ann <ann@example.com>', 'jü@example.com']
MESSAGE = 'Subject: Grüße\n\nÄpfel und Birnen\n'.encode()


def envelope_lines(server):
    """The MAIL and RCPT commands and their replies, of all connections,
    with FROM: and TO: in capitals (smtplib writes them in lower case since
    Python 3.13)."""
    return [re.sub(r'^(C: (?:mail|rcpt) )(from|to):',
                   lambda m: m.group(1) + m.group(2).upper() + ':', line,
                   flags=re.I)
            for line in server.transcript()
            if line[3:7].lower() in ('mail', 'rcpt')
            or line.startswith('S: 250 OK')
            or line.startswith('S: 5')]


class InternationalTestBase(unittest.TestCase):

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')
        self.log = InstalledHandler('zope.sendmail')
        self.events = []
        self.saved = zope.event.subscribers[:]
        zope.event.subscribers[:] = [self.events.append]

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        zope.event.subscribers[:] = self.saved
        self.log.uninstall()
        transaction.abort()
        shutil.rmtree(self.tmp)

    def mailer(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        return SMTPMailer(server.host, server.port, timeout=5)

    def queue_one(self, fromaddr, toaddrs, message=MESSAGE):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        message_id = delivery.send(fromaddr, toaddrs, message)
        transaction.commit()
        return message_id

    def process(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        thread = QueueProcessorThread(queuePath=self.queue,
                                      mailer=self.mailer())
        return thread.process_once()

    def files(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def error_events(self):
        from zope.sendmail.events import dispatcher
        self.assertTrue(dispatcher.flush(5))
        return [(e.messageId, e.errorMessage) for e in self.events
                if hasattr(e, 'errorMessage')]


class RelayWithSMTPUTF8Tests(InternationalTestBase):

    layer = UTF8Layer

    def test_the_three_addresses_delivered(self):
        self.queue_one(SENDER, RECIPIENTS)
        result = self.process()
        self.assertEqual(dict(result.counts), {'sent': 1})
        server = self.layer.server
        [received] = server.messages
        self.assertEqual(envelope_lines(server), [
            f'C: mail FROM:<shöp@example.com> size={len(received.data)}'
            f' BODY=8BITMIME SMTPUTF8',
            'S: 250 OK',
            'C: rcpt TO:<jörg@example.com>',
            'S: 250 OK',
            'C: rcpt TO:<ann@xn--bcher-kva.example>',
            'S: 250 OK'])
        self.assertEqual(received.rcpt_tos,
                         ['jörg@example.com', 'ann@xn--bcher-kva.example'])
        self.assertEqual(self.files('new') + self.files('cur'), [])

    def test_the_looping_recipients_delivered(self):
        self.queue_one('shop@example.com', LOOPED, b'Subject: x\n\ny\n')
        self.assertEqual(dict(self.process().counts), {'sent': 1})
        [received] = self.layer.server.messages
        self.assertEqual(received.rcpt_tos,
                         ['ann@example.com', 'jü@example.com'])
        self.assertEqual(received.mail_options,
                         [f'SIZE={len(received.data)}', 'SMTPUTF8'])

    def test_ascii_is_not_declared(self):
        self.queue_one('shop@example.com', ['ann@example.com'],
                       b'Subject: x\n\ny\n')
        self.process()
        [received] = self.layer.server.messages
        self.assertEqual(received.mail_options,
                         [f'SIZE={len(received.data)}'])


class RelayWithoutSMTPUTF8Tests(InternationalTestBase):

    layer = SMTPServerLayer

    def test_idn_domain_delivered_as_its_a_label(self):
        self.queue_one('shop@bücher.example', ['Ann <ann@bücher.example>'])
        self.assertEqual(dict(self.process().counts), {'sent': 1})
        [received] = self.layer.server.messages
        self.assertEqual(envelope_lines(self.layer.server), [
            f'C: mail FROM:<shop@xn--bcher-kva.example>'
            f' size={len(received.data)} BODY=8BITMIME',
            'S: 250 OK',
            'C: rcpt TO:<ann@xn--bcher-kva.example>',
            'S: 250 OK'])

    def test_queued_set_aside_with_a_reason_and_never_retried(self):
        message_id = self.queue_one(SENDER, RECIPIENTS)
        result = self.process()
        self.assertEqual(dict(result.counts), {'rejected': 1})
        [reason, name] = self.files('new')
        self.assertEqual(reason, '.reason-' + name[len('.rejected-'):])
        with open(os.path.join(self.queue, 'new', reason)) as f:
            text = f.read()
        self.assertIn("does not offer SMTPUTF8, which the sender"
                      " 'shöp@example.com' needs (its local part is not"
                      " ASCII)", text)
        # No MAIL was said, no retry is due.
        self.assertEqual(envelope_lines(self.layer.server), [])
        self.assertEqual(dict(self.process().counts), {})
        self.assertEqual(self.error_events(), [(message_id, text.strip())])

    def test_each_of_the_three_addresses(self):
        self.queue_one('shop@example.com', ['jörg@example.com'])
        self.queue_one('shop@example.com', ['ann@bücher.example'])
        self.queue_one(SENDER, ['ann@example.com'])
        self.assertEqual(dict(self.process().counts),
                         {'sent': 1, 'rejected': 2})
        [received] = self.layer.server.messages
        self.assertEqual(received.rcpt_tos, ['ann@xn--bcher-kva.example'])
        reasons = []
        for name in self.files('new'):
            if name.startswith('.reason-'):
                with open(os.path.join(self.queue, 'new', name)) as f:
                    reasons.append(f.read().split(', which ')[1].strip())
        self.assertEqual(sorted(reasons), [
            "the recipient 'jörg@example.com' needs (its local part is not"
            " ASCII)",
            "the sender 'shöp@example.com' needs (its local part is not"
            " ASCII)"])
        self.assertEqual(self.files('cur'), [])
        self.assertEqual(dict(self.process().counts), {})  # no retry

    def test_looping_recipients_processor_thread(self):
        # The thread of the issue: 0.05 s interval, looped 8 times in 1.5 s.
        from zope.sendmail.processing.thread import QueueProcessorThread
        log = InstalledHandler('zope.sendmail.processing.processor',
                               'zope.sendmail.processing.disposition')
        self.addCleanup(log.uninstall)
        self.queue_one('shop@example.com', LOOPED, b'Subject: x\n\ny\n')
        thread = QueueProcessorThread(queuePath=self.queue,
                                      mailer=self.mailer(), interval=0.05)
        thread.start()
        self.addCleanup(thread.stop, 5)
        self.assertTrue(wait_until(
            lambda: any(n.startswith('.reason-') for n in self.files('new')),
            5))
        # Twenty intervals later, nothing more happened.
        import time
        time.sleep(1.0)
        self.assertTrue(thread.stop(5))
        [record] = log.records
        self.assertEqual(record.levelname, 'ERROR')
        self.assertIn("set aside as .rejected-", record.getMessage())
        self.assertIn("the recipient 'jü@example.com' needs",
                      record.getMessage())
        self.assertEqual(self.layer.server.connections, 1)
        self.assertEqual(self.files('cur'), [])

    def test_direct_error_event_and_log_line(self):
        from zope.sendmail.delivery import DirectMailDelivery
        delivery = DirectMailDelivery(self.mailer())
        bad = delivery.send('shop@example.com', ['jörg@example.com'],
                            b'Subject: x\n\ny\n')
        good = delivery.send('shop@example.com', ['ann@bücher.example'],
                             b'Subject: y\n\ny\n')
        transaction.commit()
        [received] = self.layer.server.messages
        self.assertEqual(received.rcpt_tos, ['ann@xn--bcher-kva.example'])
        errors = [r.getMessage() for r in self.log.records
                  if r.levelname == 'ERROR']
        self.assertEqual(errors, [
            f'message {bad} from shop@example.com to jörg@example.com not'
            f' delivered: the relay {self.layer.server.host}:'
            f'{self.layer.server.port} does not offer SMTPUTF8, which the'
            f" recipient 'jörg@example.com' needs (its local part is not"
            f' ASCII)'])
        [(message_id, text)] = self.error_events()
        self.assertEqual(message_id, bad)
        self.assertIn('does not offer SMTPUTF8', text)
        self.assertNotEqual(good, bad)

    def test_invalid_idn_is_refused_by_send(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        with self.assertRaisesRegex(
                ValueError, "recipient 'jo@☃.example': the domain"
                            " '☃.example' is not a valid internationalized"
                            " domain name"):
            delivery.send('shop@example.com', ['jo@☃.example'], MESSAGE)
        transaction.commit()
        self.assertFalse(os.path.exists(self.queue))  # not even created

    def test_invalid_idn_already_queued_is_set_aside(self):
        # A file written before send() checked domains (7.3 wrote them).
        os.makedirs(os.path.join(self.queue, 'tmp'))
        os.makedirs(os.path.join(self.queue, 'cur'))
        os.makedirs(os.path.join(self.queue, 'new'))
        with open(os.path.join(self.queue, 'new', '1.old'), 'wb') as f:
            f.write('X-Zope-From: a@x.org\nX-Zope-To: jo@☃.example\n'
                    'Subject: x\r\n\r\ny\r\n'.encode())
        self.assertEqual(dict(self.process().counts), {'rejected': 1})
        self.assertIn('.reason-1.old', self.files('new'))
        self.assertEqual(self.layer.server.connections, 1)
        self.assertEqual(envelope_lines(self.layer.server), [])


class UnexpectedErrorTests(InternationalTestBase):

    layer = SMTPServerLayer

    def test_unexpected_error_defers_with_backoff(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        from zope.sendmail.processing.processor import QueueProcessor
        self.queue_one('shop@example.com', ['ann@example.com'])
        processor = QueueProcessor(BuggyMailer(), Maildir(self.queue))
        # The connection is opened before any message is claimed: a bug
        # there blames no message, and stops the pass, so that the thread
        # backs off (the pass reports it) instead of trying again at once.
        log = InstalledHandler('zope.sendmail.processing.processor')
        self.addCleanup(log.uninstall)
        result = processor.process()
        self.assertEqual(dict(result.counts), {})
        self.assertIsInstance(result.error, RuntimeError)
        self.assertEqual(len([n for n in self.files('new')
                              if not n.startswith('.')]), 1)
        self.assertIn('unexpected error, pass stopped',
                      log.records[-1].getMessage())


class BuggyMailer:
    """A mailer whose ``connect`` has a bug."""

    def connect(self):
        raise RuntimeError('a bug')
