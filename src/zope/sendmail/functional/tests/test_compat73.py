"""Queues shared with zope.sendmail 7.3, both ways.

A queue that 7.3 wrote (built here by hand from the documented format, as
7.3's ``Maildir`` and ``QueuedMailDelivery`` write it) is sent correctly by
this package's ``zope-sendmail``; and a queue this package wrote reads
correctly under 7.3's rules, implemented here from the documented format --
7.3 itself is never imported.
"""
import os
import random
import re
import socket
import time
from email.utils import formataddr
from email.utils import getaddresses

import transaction
from zope.sendmail.tests.support.compat73 import CompatTestBase


HOUR = 3600
BARE_LF = re.compile(rb'(?<!\r)\n')


def name_73(when=None):
    """A file name as 7.3's Maildir makes it."""
    return '%d.%d.%s.%d' % (when or time.time(), os.getpid(),
                            socket.gethostname(), random.randrange(0x7fffffff))


def parse_73(data):
    """A queue file as 7.3's processor reads it: (fromaddr, toaddrs,
    message), or None where 7.3 would find no envelope."""
    try:
        first, second, rest = data.split(b'\n', 2)
    except ValueError:
        return None
    if not (first.startswith(b'X-Zope-From: ')
            and second.startswith(b'X-Zope-To: ')):
        return None
    fromaddr = first[len(b'X-Zope-From: '):].decode()
    toaddrs = tuple(formataddr(pair) for pair in
                    getaddresses([second[len(b'X-Zope-To: '):].decode()])
                    if pair[1])
    return fromaddr, toaddrs, rest


class QueueOf73Tests(CompatTestBase):

    def _write_73(self, name, to, subject, sub='new'):
        data = (b'X-Zope-From: a@x\n'
                b'X-Zope-To: ' + to + b'\n'
                b'Subject: ' + subject + b'\n'
                b'\n'
                b'A message of zope.sendmail 7.3.\n'
                b'Two lines.\n')
        with open(self._path(sub, name), 'wb') as f:
            f.write(data)
        return data

    def test_sent_with_crlf_to_the_right_recipients(self):
        plain = name_73()
        self._write_73(plain, b'b@y, "Doe, J" <j@z>', b'plain')
        status, output = self._zope_sendmail()
        self.assertEqual(status, 0, output)
        [message] = self.layer.server.messages
        self.assertEqual(message.mail_from, 'a@x')
        self.assertEqual(sorted(message.rcpt_tos), ['b@y', 'j@z'])
        self.assertIn(b'Subject: plain\r\n\r\nA message of zope.sendmail'
                      b' 7.3.\r\nTwo lines.\r\n', message.data)
        self.assertIsNone(BARE_LF.search(message.data))
        self.assertNotIn(b'X-Zope', message.data)
        self.assertEqual(self._names('new'), [])

    def test_claims_and_rejected_files_of_73(self):
        now = time.time()
        stale, busy, rejected = (name_73(now - 5 * HOUR), name_73(now - HOUR),
                                 name_73(now - 9 * HOUR))
        self._write_73(stale, b'stale@y', b'stale')
        self._write_73(busy, b'busy@y', b'busy')
        old_data = self._write_73('.rejected-' + rejected, b'gone@y',
                                  b'rejected')
        # A 7.3 processor that died sending "stale" 4 hours ago, and one
        # sending "busy" right now; both claim with a hard link.
        for name, age in ((stale, 4 * HOUR), (busy, 60)):
            link = self._path('new', '.sending-' + name)
            os.link(self._path('new', name), link)
            os.utime(link, (now - age, now - age))
        status, output = self._zope_sendmail()
        self.assertEqual(status, 0, output)
        [message] = self.layer.server.messages
        self.assertEqual(message.rcpt_tos, ['stale@y'])
        self.assertIn('removing a stale 7.3 claim', output)
        # 7.3's live claim is respected; its rejected message left alone.
        self.assertEqual(self._names('new'), sorted([
            busy, '.sending-' + busy, '.rejected-' + rejected]))
        with open(self._path('new', '.rejected-' + rejected), 'rb') as f:
            self.assertEqual(f.read(), old_data)

    def test_deferred_73_message_in_cur(self):
        # 7.3 also sent what it found in cur/.
        name = name_73()
        self._write_73(name, b'c@y', b'from cur', sub='cur')
        os.utime(self._path('cur', name), (time.time() - 60,) * 2)
        status, output = self._zope_sendmail()
        self.assertEqual(status, 0, output)
        self.assertEqual(self.layer.server.messages[0].rcpt_tos, ['c@y'])


class QueueFor73Tests(CompatTestBase):

    def _messages(self):
        result = {}
        for sub in ('new', 'cur'):
            for name in self._names(sub):
                if not name.startswith('.'):   # 7.3 skips dot-files too
                    with open(self._path(sub, name), 'rb') as f:
                        result[name] = parse_73(f.read())
        return result

    def test_queued_messages_read_by_73_rules(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue)
        to = ['b@y.example', '"Doe, J" <j@z.example>', 'Ünï <u@x.example>']
        delivery.send('shop@example.com', to,
                      'Subject: hi\n\nbody\nline two\n')
        transaction.commit()
        [(fromaddr, toaddrs, message)] = self._messages().values()
        self.assertEqual(fromaddr, 'shop@example.com')
        self.assertEqual([getaddresses([a])[0][1] for a in toaddrs],
                         ['b@y.example', 'j@z.example', 'u@x.example'])
        self.assertEqual(toaddrs[1], '"Doe, J" <j@z.example>')
        self.assertTrue(message.startswith(b'Message-Id: <'))
        self.assertTrue(message.endswith(b'\r\n\r\nbody\r\nline two\r\n'))

    def test_deferred_and_rewritten_messages_read_by_73_rules(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        server = self.layer.server
        # One recipient accepted, one refused for now: the file is
        # rewritten for the other alone and deferred into cur/.
        server.refuse('later@y.example', 451, '4.2.0 mailbox busy')
        QueuedMailDelivery(self.queue).send(
            'shop@example.com', ['now@y.example', 'later@y.example'],
            'Subject: partly\n\nbody\n')
        transaction.commit()
        status, output = self._zope_sendmail()
        self.assertEqual(status, 75, output)
        self.assertEqual(self._names('new'), [])
        [(name, parsed)] = self._messages().items()
        self.assertTrue(os.path.exists(self._path('cur', name)))
        fromaddr, toaddrs, message = parsed
        self.assertEqual((fromaddr, toaddrs),
                         ('shop@example.com', ('later@y.example',)))
        self.assertIn(b'Subject: partly\r\n', message)
        # The bookkeeping beside it is a dot-file, invisible to 7.3.
        self.assertEqual([n for n in self._names('cur')
                          if not n.startswith('.')], [name])
        self.assertIn('.retry-' + name, self._names('cur'))
