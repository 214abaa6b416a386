"""Tests of the escaping of text shown on a terminal or in a log line."""
import unittest


class PrintableTests(unittest.TestCase):

    def _callFUT(self, text):
        from zope.sendmail.display import printable
        return printable(text)

    def test_printable_text_unchanged(self):
        for text in ('ann@example.com', '"Doe, Jane" <jane@example.com>',
                     'Jörg <jörg@bücher.example>', '日本語 <a@例え.jp>',
                     'back\\slash', ''):
            self.assertIs(self._callFUT(text), text)

    def test_controls_escaped_as_repr_does(self):
        self.assertEqual(self._callFUT('\x1bc\x07evil@x.org'),
                         '\\x1bc\\x07evil@x.org')
        self.assertEqual(self._callFUT('good\x08\x08\x08\x08evil'),
                         'good\\x08\\x08\\x08\\x08evil')
        self.assertEqual(self._callFUT('a\x1b[8mhidden'), 'a\\x1b[8mhidden')
        self.assertEqual(self._callFUT('line\r\nForged: yes\t'),
                         'line\\r\\nForged: yes\\t')
        self.assertEqual(self._callFUT('del\x7f c1\x85\x9b'),
                         'del\\x7f c1\\x85\\x9b')

    def test_other_non_printable_characters_escaped(self):
        # Bidirectional override, zero-width space, line separator, a
        # space that is not ASCII's, a lone surrogate, unassigned.
        self.assertEqual(
            self._callFUT('\u202eevil\u200b\u2028\xa0\udcff\U000e0000'),
            '\\u202eevil\\u200b\\u2028\\xa0\\udcff\\U000e0000')

    def test_result_is_printable(self):
        text = ''.join(map(chr, range(0x250))) + '\u2028\u202e\ufeff'
        self.assertTrue(self._callFUT(text).isprintable())

    def test_not_a_string(self):
        self.assertEqual(self._callFUT(ValueError('a\rb')), 'a\\rb')
        self.assertEqual(self._callFUT(42), '42')
