"""Long lists in one line: the first few items and a count."""
import unittest


class ShortlistTests(unittest.TestCase):

    def _callFUT(self, *args, **kw):
        from zope.sendmail.display import shortlist
        return shortlist(*args, **kw)

    def test_a_few_are_shown_whole(self):
        self.assertEqual(self._callFUT(['a@x', 'b@y', 'c@z']),
                         'a@x, b@y, c@z')
        self.assertEqual(self._callFUT([]), '')

    def test_more_are_counted(self):
        items = (f'r{n}@x' for n in range(10000))  # any iterable
        self.assertEqual(self._callFUT(items),
                         'r0@x, r1@x, r2@x and 9997 more')

    def test_how_many_and_the_separator(self):
        self.assertEqual(self._callFUT('abcd', shown=1, separator='; '),
                         'a and 3 more')
        self.assertEqual(self._callFUT('abcd', shown=None, separator='; '),
                         'a; b; c; d')
