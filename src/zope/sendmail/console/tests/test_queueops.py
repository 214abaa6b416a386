"""Tests of the operators' views and operations on a queue directory."""
import io
import os
import shutil
import tempfile
import time
import unittest
from unittest import mock


NOW = 1_700_000_000.0
MESSAGE = (b'X-Zope-From: shop@example.com\n'
           b'X-Zope-To: ann@example.com, "Doe, J" <j@example.com>\n'
           b'Message-Id: <m1@example.com>\r\nSubject: hi\r\n\r\nbody\r\n')


class QueueOpsTestBase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-queueops-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')
        for sub in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(self.queue, sub))

    def _file(self, sub, name, data=MESSAGE, mtime=None):
        path = os.path.join(self.queue, sub, name)
        with open(path, 'wb') as f:
            f.write(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def _names(self, sub):
        return sorted(os.listdir(os.path.join(self.queue, sub)))

    def _out(self, function, *args):
        out = io.StringIO()
        result = function(self.queue, *args[:-1], out, *args[-1:]) \
            if args else function(self.queue, out)
        return result, out.getvalue()


class AgeTests(unittest.TestCase):

    def test_parse_age(self):
        from zope.sendmail.console.queueops import parse_age
        for text, seconds in [('3600', 3600), ('30m', 1800), ('12h', 43200),
                              ('7d', 604800), ('2w', 1209600), ('1.5h', 5400),
                              (' 7D ', 604800), ('0', 0), ('45s', 45)]:
            self.assertEqual(parse_age(text), seconds, text)
        for text in ('', 'd', '7 days', '-1', '1y', 'soon'):
            with self.assertRaisesRegex(ValueError, 'is not an age'):
                parse_age(text)

    def test_format_age(self):
        from zope.sendmail.console.queueops import format_age
        ages = (-5, 59, 60, 3599, 3600, 3660, 86400, 8 * 86400 + 7300)
        self.assertEqual([format_age(s) for s in ages],
                         ['0 s', '59 s', '1 min', '59 min', '1 h 0 min',
                          '1 h 1 min', '1 d 0 h', '8 d 2 h'])


class CheckQueueTests(QueueOpsTestBase):

    def _check(self, path, create=False):
        from zope.sendmail.console.queueops import check_queue
        return check_queue(path, create)

    def test_a_queue(self):
        self.assertIsNone(self._check(self.queue))

    def test_missing_is_never_created(self):
        from zope.sendmail.console.queueops import QueueError
        missing = os.path.join(self.tmp, 'typo')
        with self.assertRaisesRegex(QueueError, 'no queue directory'):
            self._check(missing, create=True)
        self.assertFalse(os.path.exists(missing))

    def test_empty_directory_becomes_a_queue_when_processing(self):
        empty = os.path.join(self.tmp, 'empty')
        os.mkdir(empty)
        self._check(empty)
        self.assertEqual(os.listdir(empty), [])
        self._check(empty, create=True)
        self.assertEqual(sorted(os.listdir(empty)), ['cur', 'new', 'tmp'])

    def test_not_a_queue(self):
        from zope.sendmail.console.queueops import QueueError
        with self.assertRaisesRegex(QueueError, 'is not a mail queue'):
            self._check(self.tmp, create=True)
        self.assertEqual(os.listdir(self.tmp), ['queue'])
        with self.assertRaisesRegex(QueueError, 'is not a directory'):
            self._check(self._file('new', 'x'))


class ViewTests(QueueOpsTestBase):

    def _fill(self):
        self._file('new', '1699990000.1.host.1')
        self._file('new', '1699996400.2.host.2')
        open(os.path.join(self.queue, 'new', '.sending-1699996400.2.host.2'),
             'w').close()
        self._file('cur', '1699900000.3.host.3', mtime=NOW + 600)
        with open(os.path.join(self.queue, 'cur',
                               '.retry-1699900000.3.host.3'), 'w') as f:
            f.write('attempts: 3\nqueued: 1699800000\nlast-error: 451 busy\n')
        self._file('new', '.rejected-1699000000.4.host.4', b'garbage')
        self._file('cur', '.claim-1699900000.3.host.3', b'')

    def test_status(self):
        from zope.sendmail.console.queueops import status
        self._fill()
        out = io.StringIO()
        status(self.queue, out, NOW)
        lines = out.getvalue().splitlines()
        self.assertRegex(lines[1], r'^file system:    \S+ at /.* \(local\)$')
        self.assertEqual(lines[2:5], ['lease:          none',
                                      'queued:         1',
                                      'being sent:     1'])
        self.assertRegex(lines[5], r'^deferred:       1, next attempt in 10'
                                   r' min \(\d{4}-\d\d-\d\d [\d:]+\)$')
        self.assertEqual(lines[6:], ['rejected:       1',
                                     'oldest message: queued 1 d 3 h ago'])

    def test_lease_holder(self):
        from zope.sendmail.stores.maildir.leasefile import \
            describe_lease as lease_text
        fields = {'host': 'web1', 'pid': '42', 'renewed': str(NOW - 3),
                  'timeout': '120'}
        self.assertEqual(lease_text(fields, NOW),
                         'held by web1 pid 42, renewed 3 s ago')
        fields['renewed'] = str(NOW - 600)
        self.assertEqual(lease_text(fields, NOW),
                         'held by web1 pid 42, renewed 600 s ago (stale: may'
                         ' be taken over)')
        self.assertEqual(lease_text({'host': 'x'}, NOW),
                         'held by x pid ? (unreadable lease file)')
        self.assertEqual(lease_text(None, NOW), 'none')

    def test_listing(self):
        from zope.sendmail.console.queueops import listing
        self._fill()
        out = io.StringIO()
        listing(self.queue, out, NOW)
        text = out.getvalue()
        self.assertTrue(text.startswith('new/1699996400.2.host.2'))
        self.assertIn('  state:        sending\n', text)
        self.assertIn('  to:           ann@example.com, "Doe, J"'
                      ' <j@example.com>\n', text)
        self.assertIn('  message-id:   m1@example.com\n', text)
        self.assertIn('  state:        deferred, 3 attempts\n'
                      '  queued:       2 d 7 h ago\n', text)
        self.assertIn('  last error:   451 busy\n', text)
        self.assertIn('new/.rejected-1699000000.4.host.4\n'
                      '  state:        rejected\n', text)
        self.assertIn('  unreadable:   queue file is truncated', text)
        self.assertIn('  reason:       (none recorded)\n', text)
        self.assertTrue(text.endswith('\n4 messages\n'))

    def test_vanishing_files_are_skipped(self):
        from zope.sendmail.stores.maildir import scan
        self._file('new', 'gone')

        def read(entry):  # as if sent between the listing and the read
            raise FileNotFoundError(entry.path)
        with mock.patch.object(scan.Entry, 'read', read):
            self.assertEqual(scan.scan(self.queue, read=True), [])


class RejectedTests(QueueOpsTestBase):

    def test_requeue(self):
        from zope.sendmail.console.queueops import requeue_rejected
        self._file('new', '.rejected-1.1.host.1')
        self._file('new', '.reason-1.1.host.1', b'550 no')
        self._file('cur', '.rejected-2.2.host.2')
        self._file('cur', '.retry-2.2.host.2', b'attempts: 9\n')
        self._file('new', '3.3.host.3')
        out = io.StringIO()
        self.assertEqual(requeue_rejected(self.queue, out), 2)
        self.assertEqual(self._names('cur'), [])
        new = self._names('new')
        self.assertEqual(len(new), 3)
        self.assertFalse([n for n in new if n.startswith('.')])
        self.assertIn('3.3.host.3', new)
        for name in set(new) - {'3.3.host.3'}:
            # A fresh name: the message's age starts now.
            self.assertGreater(float(name.split('.')[0]), time.time() - 60)
        self.assertTrue(out.getvalue().endswith(
            '\n2 rejected messages requeued\n'))

    def test_names_are_shown_escaped(self):
        # A queue file's name is the queue's, not the operator's terminal's.
        from zope.sendmail.console.queueops import purge_rejected
        from zope.sendmail.console.queueops import requeue_rejected
        self._file('new', '.rejected-1.1.host\x1b[2J.1')
        out = io.StringIO()
        self.assertEqual(requeue_rejected(self.queue, out), 1)
        self.assertNotIn('\x1b', out.getvalue())
        self.assertIn('host\\x1b[2J.1', out.getvalue())
        self._file('cur', '.rejected-2.2.host\x07.2', mtime=NOW - 10 * 86400)
        out = io.StringIO()
        self.assertEqual(purge_rejected(self.queue, 86400, out, NOW), 1)
        self.assertNotIn('\x07', out.getvalue())
        self.assertIn('host\\x07.2', out.getvalue())

    def test_purge(self):
        from zope.sendmail.console.queueops import purge_rejected
        self._file('new', '.rejected-1.1.host.1', mtime=NOW - 10 * 86400)
        self._file('new', '.reason-1.1.host.1', b'x', mtime=NOW - 2 * 86400)
        # 7.3 kept no reason: its file's time counts.
        self._file('cur', '.rejected-2.2.host.2', mtime=NOW - 9 * 86400)
        self._file('cur', '.rejected-3.3.host.3', mtime=NOW - 86400)
        out = io.StringIO()
        self.assertEqual(purge_rejected(self.queue, 7 * 86400, out, NOW), 1)
        self.assertEqual(out.getvalue(),
                         'deleted cur/.rejected-2.2.host.2, rejected 9 d 0 h'
                         ' ago\n1 rejected message deleted\n')
        self.assertEqual(purge_rejected(self.queue, 86400, io.StringIO(),
                                        NOW), 2)
        self.assertEqual(self._names('new') + self._names('cur'), [])
