"""Tests of the DATA stream made a slice at a time (datastream.py)."""
import random
import re
import unittest


def reference(message):
    """What smtplib sends after DATA for *message*, made whole: the
    stream must be byte for byte the same (with CRLF line endings)."""
    message = re.sub(rb'\r\n|\r|\n', b'\r\n', message)
    quoted = re.sub(rb'(?m)^\.', b'..', message)
    if quoted[-2:] != b'\r\n':
        quoted += b'\r\n'
    return quoted + b'.\r\n'


class DataChunksTests(unittest.TestCase):

    def _chunks(self, message, size):
        from zope.sendmail.smtp.datastream import data_chunks
        return list(data_chunks(message, size))

    def test_as_smtplib_for_the_awkward_cases(self):
        cases = [b'', b'x', b'.', b'..', b'\r', b'\n', b'\r\n', b'.\r\n',
                 b'a\r\n.\r\n', b'a\n.b\n', b'a\r.b\r', b'a\r\n\r\n.',
                 b'Subject: x\r\n\r\n.leading\r\nend']
        for message in cases:
            for size in (1, 2, 3, 1000):
                with self.subTest(message=message, size=size):
                    self.assertEqual(
                        b''.join(self._chunks(memoryview(message), size)),
                        reference(message))

    def test_boundaries_fall_anywhere(self):
        # Random messages made of the characters that matter, cut into
        # slices of every small size: a CR at the end of one slice and its
        # LF at the start of the next, a dot after a slice ending a line.
        rng = random.Random(15)
        for n in range(300):
            message = bytes(rng.choice(b'\r\n.x') for _ in range(
                rng.randrange(30)))
            size = rng.randrange(1, 8)
            with self.subTest(message=message, size=size):
                self.assertEqual(b''.join(self._chunks(message, size)),
                                 reference(message))

    def test_slices_stay_small(self):
        message = (b'.' + b'x' * 98 + b'\n') * 1000  # 100 KB, all stuffed
        chunks = self._chunks(message, 4096)
        self.assertLessEqual(max(map(len, chunks)), 2 * 4096 + 1)
        self.assertEqual(b''.join(chunks), reference(message))

    def test_the_end_comes_with_the_last_slice(self):
        # Written apart, the final dot waits for the relay's delayed ACK
        # of the slice before it: some 40 ms a message.
        for message, size in ((b'a\r\n', 1000), (b'abc', 1000),
                              (b'x' * 10 + b'\r', 4), (b'', 4)):
            with self.subTest(message=message, size=size):
                last = self._chunks(message, size)[-1]
                self.assertTrue(last.endswith(b'.\r\n'))
                self.assertGreater(len(last), 3)

    def test_a_view_of_a_larger_buffer(self):
        data = b'X-Zope-From: a@x\nX-Zope-To: b@y\n.dot\r\nbody\r\n'
        view = memoryview(data)[data.index(b'.dot'):]
        self.assertEqual(b''.join(self._chunks(view, 3)),
                         b'..dot\r\nbody\r\n.\r\n')


class ScanTests(unittest.TestCase):

    def test_has_crlf_only(self):
        from zope.sendmail.smtp.datastream import has_crlf_only
        for message, expected in [(b'', True), (b'a\r\nb\r\n', True),
                                  (b'a\nb', False), (b'a\rb', False),
                                  (b'a\r\n\rb', False), (b'\r\n\n', False)]:
            for size in (1, 2, 3, 100):
                with self.subTest(message=message, size=size):
                    self.assertEqual(
                        has_crlf_only(memoryview(message), size), expected)
            self.assertEqual(has_crlf_only(message), expected)

    def test_is_ascii(self):
        from zope.sendmail.smtp.datastream import is_ascii
        self.assertTrue(is_ascii(memoryview(b'abc' * 10), 7))
        self.assertFalse(is_ascii(memoryview(b'abc' * 10 + b'\xc3'), 7))
        self.assertFalse(is_ascii(b'\xff'))
