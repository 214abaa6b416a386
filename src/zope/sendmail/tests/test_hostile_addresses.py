"""Hostile addresses through the real deliveries, processor, relay and
``zope-sendmail`` program: look-alike characters that the IDNA mapping
turns into separators, control characters, and a crafted queue file whose
envelope holds a CR or an escape sequence."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import transaction
import zope.event
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import child_env


MESSAGE = b'Subject: reset your password\n\nhttps://site.org/reset/s3cret\n'
# The recipients, each refused with the ValueError's beginning.
LOOK_ALIKES = [
    ('victim@corp.com\uff0cattacker\uff20evil.org',
     "recipient 'victim@corp.com，attacker＠evil.org': the domain"
     " 'corp.com，attacker＠evil.org' maps to 'corp.com,attacker@evil.org'"),
    ('b@x\uff08c\uff09.org', "recipient 'b@x（c）.org': the domain"
                             " 'x（c）.org' maps to 'x(c).org'"),
    ('b@x\uff1e.org', "recipient 'b@x＞.org': the domain 'x＞.org' maps to"
                      " 'x>.org'"),
    ('b@x\u00a0y.org', "recipient 'b@x\\xa0y.org': the domain 'x\\xa0y.org'"
                       " maps to 'x y.org'"),
    ('Ann <b@x\ufe50y.org>', "recipient 'Ann <b@x﹐y.org>': the domain"
                             " 'x﹐y.org' maps to 'x,y.org'"),
]
CONTROLS = ['\x1bc\x07evil@x.org', 'good\x08\x08\x08\x08evil@x.org',
            '\x1b[8mhidden@x.org', 'a\x7f@x.org', 'a\x9b@x.org']


def unprintable(lines):
    """The lines (of a log, a listing) holding a character a terminal or
    a log reader would act on."""
    return [line for line in lines if not line.isprintable()]


class HostileAddressTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-hostile-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)
        self.events = []
        saved = zope.event.subscribers[:]
        zope.event.subscribers[:] = [self.events.append]
        self.addCleanup(zope.event.subscribers.__setitem__, slice(None),
                        saved)
        self.addCleanup(transaction.abort)
        from zope.sendmail.smtp.connectioncache import clear_all
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)
        self.addCleanup(clear_all)

    def mailer(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        return SMTPMailer(server.host, server.port, timeout=5)

    def deliveries(self):
        from zope.sendmail.delivery import DirectMailDelivery
        from zope.sendmail.delivery import QueuedMailDelivery
        return [QueuedMailDelivery(self.queue, durable=False),
                DirectMailDelivery(self.mailer())]

    def log_lines(self):
        return [line for record in self.log.records
                for line in record.getMessage().split('\n')]

    def test_look_alikes_refused_by_both_deliveries(self):
        for delivery in self.deliveries():
            for recipient, text in LOOK_ALIKES:
                with self.assertRaises(ValueError) as cm:
                    delivery.send('noreply@site.org',
                                  ['ok@site.org', recipient], MESSAGE)
                self.assertTrue(str(cm.exception).startswith(text),
                                str(cm.exception))
            transaction.commit()
        self.assertFalse(os.path.exists(self.queue))
        self.assertEqual(self.layer.server.connections, 0)

    def test_mailer_says_no_command_for_a_look_alike(self):
        # Called directly, without a delivery's checks: refused before
        # MAIL, never cut short to b@x.
        from zope.sendmail.interfaces import PermanentDeliveryError
        connection = self.mailer().connect()
        self.addCleanup(connection.close)
        with self.assertRaisesRegex(PermanentDeliveryError,
                                    "maps to 'x>.org'"):
            connection.send('noreply@site.org', ['b@x\uff1e.org'], MESSAGE)
        self.assertEqual(connection.send('a@site.org', ['b@x.org'], MESSAGE),
                         {})
        # Python 3.13's smtplib writes "to:" in lower case.
        rcpts = [line.lower() for line in self.layer.server.transcript()
                 if line.lower().startswith('c: rcpt')]
        self.assertEqual(rcpts, ['c: rcpt to:<b@x.org>'])

    def test_controls_refused_by_both_deliveries(self):
        for delivery in self.deliveries():
            for address in CONTROLS:
                for args in ((address, ['b@x.org']),
                             ('a@x.org', ['b@x.org', address])):
                    with self.assertRaisesRegex(
                            ValueError, r'(sender|recipient) contains a'
                                        r' (control character|line break)'):
                        delivery.send(*args, MESSAGE)
            with self.assertRaisesRegex(ValueError, 'Message-Id contains'):
                delivery.send('a@x.org', ['b@x.org'],
                              b'Message-Id: <\x1b]0;owned\x07@x>\n\nbody')
            transaction.commit()
        self.assertFalse(os.path.exists(self.queue))
        self.assertEqual(self.layer.server.connections, 0)

    def _crafted_queue(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        Maildir(self.queue, create=True)
        crafted = {
            '1.cr': b'X-Zope-From: a@x.org\nX-Zope-To: b@x.org\r'
                    b'ERROR forged log line\n',
            '2.esc': b'X-Zope-From: \x1b]0;pwned\x07a@x.org\n'
                     b'X-Zope-To: \x1bc\x1b[8mb@x.org\n',
            '3.c1': 'X-Zope-From: a@x.org\nX-Zope-To: b\x9b@x.org\n'.encode(),
        }
        for name, envelope in crafted.items():
            with open(os.path.join(self.queue, 'new', name), 'wb') as f:
                f.write(envelope + b'Message-Id: <\x1b[2J@x>\r\n\r\nbody\r\n')
        return sorted(crafted)

    def list_queue(self):
        """``zope-sendmail --list``, as a process: its output lines."""
        child = subprocess.run(
            [sys.executable, '-c', 'from zope.sendmail.queue import run;'
             ' run()', '--list', self.queue], env=child_env(),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(child.returncode, 0, child.stderr)
        return child.stdout.decode('utf-8').split('\n')

    def test_crafted_queue_file_set_aside_and_shown_escaped(self):
        from zope.sendmail.events import dispatcher
        from zope.sendmail.processing.thread import QueueProcessorThread
        names = self._crafted_queue()
        listing = self.list_queue()
        self.assertEqual(unprintable(listing), [])
        self.assertEqual(
            [line.strip() for line in listing if 'unreadable' in line], [
                'unreadable:   the X-Zope-To line holds a control character'
                ' (U+000D)',
                'unreadable:   the X-Zope-From line holds a control'
                ' character (U+001B)',
                'unreadable:   the X-Zope-To line holds a control character'
                ' (U+009B)'])
        thread = QueueProcessorThread(queuePath=self.queue,
                                      mailer=self.mailer())
        self.assertEqual(dict(thread.process_once().counts),
                         {'rejected': 3})
        self.assertEqual(self.layer.server.messages, [])
        # The log: three ERROR lines, one per file, nothing raw in them.
        lines = self.log_lines()
        self.assertEqual(unprintable(lines), [])
        errors = [r.getMessage() for r in self.log.records
                  if r.levelname == 'ERROR']
        self.assertEqual(len(errors), 3)
        self.assertIn('unreadable queue file', errors[0])
        # The reasons beside the files, and the events.
        for name in names:
            with open(os.path.join(self.queue, 'new', '.reason-' + name),
                      encoding='utf-8') as f:
                reason = f.read().strip()
            self.assertTrue(reason.isprintable(), reason)
            self.assertTrue(reason.startswith(
                f'unreadable queue file {name}: the X-Zope-'), reason)
        self.assertTrue(dispatcher.flush(5))
        self.assertEqual(len(self.events), 3)
        # Named by their files: an unreadable file's Message-Id is its
        # content, quoted nowhere.
        self.assertEqual(sorted(e.messageId for e in self.events),
                         sorted(names))
        for event in self.events:
            self.assertTrue(event.errorMessage.isprintable())
        # Listed again, as set aside: still nothing raw.
        listing = self.list_queue()
        self.assertEqual(unprintable(listing), [])
        self.assertEqual(listing[-2], '3 messages')

    def test_odd_but_valid_addresses_and_relay_replies_shown_escaped(self):
        # A bidi override and a zero-width space are not controls: such
        # an address is taken, and shown escaped wherever it is printed.
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.events import dispatcher
        from zope.sendmail.processing.thread import QueueProcessorThread
        server = self.layer.server
        server.refuse('gone@x.org', 550, '5.1.1 \x1b[8mhidden\x1b[0m gone')
        QueuedMailDelivery(self.queue, durable=False).send(
            '"Shop\u202e" <shop@x.org>',
            ['Ann\u200b <ann@x.org>', 'gone@x.org'], MESSAGE)
        transaction.commit()
        listing = self.list_queue()
        self.assertEqual(unprintable(listing), [])
        self.assertIn('  from:         "Shop\\u202e" <shop@x.org>', listing)
        self.assertIn('  to:           Ann\\u200b <ann@x.org>, gone@x.org',
                      listing)
        thread = QueueProcessorThread(queuePath=self.queue,
                                      mailer=self.mailer())
        self.assertEqual(dict(thread.process_once().counts), {'sent': 1})
        [received] = server.messages
        self.assertEqual(received.rcpt_tos, ['ann@x.org'])
        self.assertEqual(unprintable(self.log_lines()), [])
        [error] = [r.getMessage() for r in self.log.records
                   if r.levelname == 'ERROR']
        self.assertTrue(error.endswith(
            'to Ann\\u200b <ann@x.org>, gone@x.org: recipients refused:'
            ' gone@x.org: 550 5.1.1 \\x1b[8mhidden\\x1b[0m gone'), error)
        self.assertIn('from "Shop\\u202e" <shop@x.org>', error)
        self.assertTrue(dispatcher.flush(5))
        [failed] = [e for e in self.events if hasattr(e, 'errorMessage')]
        self.assertEqual(failed.errorMessage,
                         'recipients refused: gone@x.org: 550 5.1.1'
                         ' \\x1b[8mhidden\\x1b[0m gone')

    def test_direct_delivery_logs_escaped(self):
        from zope.sendmail.delivery import DirectMailDelivery
        server = self.layer.server
        server.refuse('gone@x.org', 550, '5.1.1 \x1b[8mhidden')
        DirectMailDelivery(self.mailer()).send(
            'shop@x.org', ['Ann\u202e <ann@x.org>', 'gone@x.org'], MESSAGE)
        transaction.commit()
        self.assertEqual(unprintable(self.log_lines()), [])
        messages = [r.getMessage() for r in self.log.records]
        self.assertTrue(any(m.endswith(
            'recipients refused: gone@x.org: 550 5.1.1 \\x1b[8mhidden')
            for m in messages), messages)
        self.assertTrue(any(m.endswith(
            'from shop@x.org to Ann\\u202e <ann@x.org> sent')
            for m in messages), messages)
