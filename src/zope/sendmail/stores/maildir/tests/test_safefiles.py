"""Tests of opening queue files without trusting them, on real files: a
FIFO, a symbolic link, a directory, a device and a socket are never read,
and what a hostile file holds is never quoted."""
import logging
import os
import shutil
import socket
import tempfile
import unittest

from zope.testing.loggingsupport import InstalledHandler
from zope.sendmail.tests.support.hostile import SECRET
from zope.sendmail.tests.support.hostile import in_thread


def open_fds():
    return len(os.listdir('/proc/self/fd'))


class HostileFilesMixin:
    """A temporary directory with one entry of each kind, and a secret."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-safefiles-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.secret = self.path('secret')
        with open(self.secret, 'w') as f:
            f.write(SECRET + '\nroot:x:0:0\n')

    def path(self, name):
        return os.path.join(self.tmp, name)

    def fifo(self, name='fifo'):
        os.mkfifo(self.path(name))
        return self.path(name)

    def link(self, target, name='link'):
        os.symlink(target, self.path(name))
        return self.path(name)

    def unix_socket(self, name='socket'):
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(self.path(name))
        return self.path(name)


class OpenRegularTests(HostileFilesMixin, unittest.TestCase):

    def _open(self, path, *args):
        from zope.sendmail.stores.maildir.safefiles import open_regular
        return in_thread(lambda: open_regular(path, *args))

    def _refused(self, path, kind, *args):
        from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
        before = open_fds()
        with self.assertRaises(NotRegularFileError) as caught:
            self._open(path, *args)
        self.assertEqual(caught.exception.kind, kind)
        self.assertEqual(str(caught.exception),
                         f'{path!r} is {kind}, not a regular file')
        self.assertIsInstance(caught.exception, OSError)
        self.assertEqual(open_fds(), before)
        return caught.exception

    def test_regular_file(self):
        fd, st = self._open(self.secret)
        try:
            self.assertEqual(st.st_size, len(SECRET) + 12)
            self.assertEqual(os.read(fd, 6), b'SECRET')
        finally:
            os.close(fd)

    def test_every_other_kind_is_refused_without_blocking(self):
        self._refused(self.fifo(), 'a FIFO')
        self._refused(self.fifo('fifo2'), 'a FIFO', os.O_RDWR)
        self._refused(self.link(self.secret), 'a symbolic link')
        self._refused(self.link(self.path('fifo'), 'to-fifo'),
                      'a symbolic link')
        self._refused(self.link('/nowhere', 'dangling'), 'a symbolic link')
        self._refused(self.tmp, 'a directory')
        self._refused('/dev/zero', 'a character device')
        self._refused(self.unix_socket(), 'a socket')

    def test_a_hostile_name_is_shown_escaped(self):
        path = self.fifo('evil\x1b[8m\nname')
        error = self._refused(path, 'a FIFO')
        self.assertNotIn('\n', str(error))
        self.assertNotIn('\x1b', str(error))

    def test_missing(self):
        with self.assertRaises(FileNotFoundError):
            self._open(self.path('missing'))

    def test_read_regular_is_bounded(self):
        from zope.sendmail.stores.maildir.safefiles import read_regular
        self.assertEqual(read_regular(self.secret, 6), b'SECRET')
        self.assertEqual(read_regular(self.secret),
                         (SECRET + '\nroot:x:0:0\n').encode())
        with open(self.path('empty'), 'w'):
            pass
        self.assertEqual(read_regular(self.path('empty')), b'')

    def test_read_fd_reads_no_more_than_it_was_told(self):
        # A file that grows after fstat is read up to the size fstat gave.
        from zope.sendmail.stores.maildir.safefiles import open_regular
        from zope.sendmail.stores.maildir.safefiles import read_fd
        fd, st = open_regular(self.secret)
        self.addCleanup(os.close, fd)
        with open(self.secret, 'a') as f:
            f.write('more and more\n')
        self.assertEqual(read_fd(fd, st.st_size),
                         (SECRET + '\nroot:x:0:0\n').encode())
        self.assertEqual(read_fd(fd, 6), b'SECRET')  # from the start again


class NoticesTests(unittest.TestCase):

    def setUp(self):
        self.log = InstalledHandler('zope.sendmail.tests.notices')
        self.addCleanup(self.log.uninstall)

    def _makeOne(self):
        from zope.sendmail.stores.maildir.notices import Notices
        return Notices(logging.getLogger('zope.sendmail.tests.notices'))

    def test_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import INotices
        verifyObject(INotices, self._makeOne())

    def test_once_per_entry_and_topic_until_the_entry_is_gone(self):
        notices = self._makeOne()
        for i in range(3):
            notices.once('new/a', 'kind', logging.ERROR, 'a is %s', 'odd')
            notices.once('new/a', 'claim', logging.WARNING, 'claim of a')
            notices.once('new/b', 'kind', logging.ERROR, 'b is %s', 'odd')
        self.assertEqual([(r.levelname, r.getMessage())
                          for r in self.log.records],
                         [('ERROR', 'a is odd'), ('WARNING', 'claim of a'),
                          ('ERROR', 'b is odd')])
        notices.retain({'new/b'})
        self.assertTrue(notices.once('new/a', 'kind', logging.ERROR, 'again'))
        self.assertFalse(notices.once('new/b', 'kind', logging.ERROR, 'b'))
        self.assertEqual(repr(notices), '<Notices 2 logged>')

    def test_log_once_without_notices_logs_each_time(self):
        from zope.sendmail.stores.maildir.notices import log_once
        logger = logging.getLogger('zope.sendmail.tests.notices')
        for i in range(2):
            log_once(None, logger, 'p', 't', logging.WARNING, 'said')
        self.assertEqual(len(self.log.records), 2)


class EnvelopeErrorsQuoteNothingTests(unittest.TestCase):
    """What an unreadable queue file holds never reaches an error."""

    def test_each_error_says_what_is_wrong_only(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        from zope.sendmail.stores.maildir.envelope import parse_envelope
        secret = SECRET.encode()
        cases = [
            (secret, 'queue file is truncated: fewer than two envelope'
                     ' lines'),
            (secret + b'\n' + secret + b'\nbody',
             'queue file does not start with an X-Zope-From line'),
            (b'X-Zope-From: a@x\n' + secret + b'\nbody',
             'second line of queue file is not an X-Zope-To line'),
            (b'X-Zope-From: a@x\xff' + secret + b'\nX-Zope-To: b@x\nbody',
             'envelope is not UTF-8'),
            (b'X-Zope-From: a@x\nX-Zope-To: "' + secret + b'" <>\nbody',
             'X-Zope-To line names no recipient'),
        ]
        for data, text in cases:
            with self.subTest(text=text):
                with self.assertRaises(EnvelopeError) as caught:
                    parse_envelope(data)
                self.assertEqual(str(caught.exception), text)
