"""Oldest first: queue file names sort in time order, and a pass sends in
the order messages were queued, 7.3's files and older names included."""
import os
import re
import unittest

from zope.sendmail.tests.support.processor import ProcessorTestBase


class QueuedOrderTests(unittest.TestCase):

    def _callFUT(self, name, mtime=None):
        from zope.sendmail.stores.maildir.names import queued_order

        def stat():
            if mtime is None:
                raise AssertionError('mtime asked for a precise name')
            return mtime
        return queued_order(name, stat)

    def test_new_names_are_zero_padded_and_sort_in_time_order(self):
        from zope.sendmail.stores.maildir.names import unique_name
        names = [unique_name() for n in range(50)]
        self.assertEqual(sorted(names), names)
        micros = names[0].split('.M')[1].split('P')[0]
        self.assertEqual(len(micros), 6)

    def test_unpadded_names_of_earlier_versions(self):
        late = self._callFUT('1700000000.M123456P7Q0Rab.host')
        early = self._callFUT('1700000000.M99999P7Q1Rab.host')
        self.assertLess(early, late)
        self.assertEqual(early[0], 1700000000.099999)

    def test_73_names_take_the_mtime_within_their_second(self):
        self.assertEqual(self._callFUT('1700000000.42.host.77',
                                       1700000000.5)[0], 1700000000.5)
        # An mtime outside the named second (copied, touched): the name.
        self.assertEqual(self._callFUT('1700000000.42.host.77',
                                       1800000000.5)[0], 1700000000.0)

    def test_a_name_without_a_time_sorts_by_its_mtime(self):
        self.assertEqual(self._callFUT('foo', 12.5), (12.5, 'foo'))


class OldestFirstTests(ProcessorTestBase):

    def _write(self, name, subject, mtime):
        from zope.sendmail.stores.maildir.envelope import format_envelope
        path = os.path.join(self.queue, 'new', name)
        with open(path, 'wb') as f:
            f.write(format_envelope('alice@example.com', ['bob@example.com'])
                    + b'Subject: %s\r\n\r\nbody\r\n' % subject.encode())
        os.utime(path, (mtime, mtime))

    def test_one_connection_sends_in_queue_order(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        Maildir(self.queue, create=True)
        base = 1700000000
        # Written in this order: 7.3's files (seconds only), this
        # package's unpadded names (M99999 sorted after M123456 by name).
        self._write(f'{base}.4242.host.1', 'first', base + 0.05)
        self._write(f'{base}.M123456P7Q0Rab.host', 'third', base + 0.123456)
        self._write(f'{base}.M99999P7Q1Rab.host', 'second', base + 0.099999)
        self._write(f'{base}.4242.host.2', 'fourth', base + 0.5)
        self._write(f'{base + 1}.M5P7Q2Rab.host', 'fifth', base + 1)
        self._queue(['bob@example.com'], subject='sixth')
        result = self._makeOne().process()
        self.assertEqual(result.counts['sent'], 6)
        server = self.layer.server
        subjects = [re.search(rb'Subject: (\w+)', m.data).group(1).decode()
                    for m in server.messages]
        self.assertEqual(subjects, ['first', 'second', 'third', 'fourth',
                                    'fifth', 'sixth'])
        self.assertEqual(server.connections, 1)
        self.assertEqual(len(set(m.connection for m in server.messages)), 1)

    def test_maildir_lists_in_queue_order(self):
        from zope.sendmail.stores.maildir.folder import Maildir
        maildir = Maildir(self.queue, create=True)
        base = 1700000000
        self._write(f'{base}.4242.host.9', 'b', base + 0.7)
        self._write(f'{base}.M600000P7Q0Rab.host', 'a', base + 0.6)
        self.assertEqual([os.path.basename(p) for p in maildir], [
            f'{base}.M600000P7Q0Rab.host', f'{base}.4242.host.9'])
