"""Tests of the queue file's envelope lines and the address checks."""
import unittest


class FormatAndParseTests(unittest.TestCase):

    def _format(self, fromaddr, toaddrs):
        from zope.sendmail.stores.maildir.envelope import format_envelope
        return format_envelope(fromaddr, toaddrs)

    def _parse(self, data):
        from zope.sendmail.stores.maildir.envelope import parse_envelope
        return parse_envelope(data)

    def test_format_is_the_73_format(self):
        self.assertEqual(
            self._format('jim@example.com', ['a@example.org', 'b@x.net']),
            b'X-Zope-From: jim@example.com\n'
            b'X-Zope-To: a@example.org, b@x.net\n')

    def test_round_trip(self):
        data = self._format('jim@example.com',
                            ['a@example.org', 'b@x.net']) + b'Subject: x\r\n'
        self.assertEqual(self._parse(data),
                         ('jim@example.com', ('a@example.org', 'b@x.net'),
                          b'Subject: x\r\n'))

    def test_display_names_with_commas_survive(self):
        toaddrs = ['"Doe, Jane" <jane@example.com>',
                   'Bob <bob@example.com>', 'carl@example.com']
        data = self._format('a@example.com', toaddrs) + b'body'
        fromaddr, parsed, message = self._parse(data)
        self.assertEqual(parsed, tuple(toaddrs))
        self.assertEqual(message, b'body')

    def test_tolerates_crlf_envelope_lines(self):
        data = b'X-Zope-From: a@x\r\nX-Zope-To: b@y\r\nbody'
        self.assertEqual(self._parse(data), ('a@x', ('b@y',), b'body'))

    def test_truncated(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        with self.assertRaisesRegex(EnvelopeError, 'truncated'):
            self._parse(b'X-Zope-From: a@x\n')

    def test_missing_from(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        with self.assertRaisesRegex(EnvelopeError, 'X-Zope-From'):
            self._parse(b'Subject: x\nX-Zope-To: b@y\nbody')

    def test_missing_to(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        with self.assertRaisesRegex(EnvelopeError, 'X-Zope-To'):
            self._parse(b'X-Zope-From: a@x\nSubject: x\nbody')

    def test_no_recipient(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        with self.assertRaisesRegex(EnvelopeError, 'no recipient'):
            self._parse(b'X-Zope-From: a@x\nX-Zope-To: \nbody')

    def test_not_utf8(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        with self.assertRaisesRegex(EnvelopeError, 'UTF-8'):
            self._parse(b'X-Zope-From: a\xff@x\nX-Zope-To: b@y\nbody')

    def test_control_characters_make_it_unreadable(self):
        # A crafted file: a CR (not at the end), an escape sequence, a C1
        # control or DEL in either line; the error quotes none of it.
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        for data, text in (
                (b'X-Zope-From: a@x\nX-Zope-To: b@y\rForged: 1\nbody',
                 'the X-Zope-To line holds a control character (U+000D)'),
                (b'X-Zope-From: \x1b[2Ja@x\nX-Zope-To: b@y\nbody',
                 'the X-Zope-From line holds a control character (U+001B)'),
                ('X-Zope-From: a@x\nX-Zope-To: b\x9b@y\nbody'.encode(),
                 'the X-Zope-To line holds a control character (U+009B)'),
                (b'X-Zope-From: a@x\nX-Zope-To: b\x7f@y\nbody',
                 'the X-Zope-To line holds a control character (U+007F)')):
            with self.assertRaises(EnvelopeError) as cm:
                self._parse(data)
            self.assertEqual(str(cm.exception), text)

    def test_message_id_of_is_printable(self):
        from zope.sendmail.message import message_id_of
        self.assertEqual(
            message_id_of(b'Message-Id: <\x1b[8m\x07@x>\r\n\r\n'),
            '\\x1b[8m\\x07@x')
        self.assertEqual(message_id_of('Message-Id: <jö@x>\r\n'.encode()),
                         'jö@x')

    def test_error_is_a_value_error(self):
        from zope.sendmail.stores.maildir.envelope import EnvelopeError
        self.assertTrue(issubclass(EnvelopeError, ValueError))


class CheckTests(unittest.TestCase):

    def test_check_address(self):
        from zope.sendmail.addresses import check_address
        self.assertEqual(check_address('a@b.c'), 'a@b.c')
        for bad in ('a@b.c\r\nRCPT TO:<x@y>', 'a@b\n', 'a\x00@b', 'a\r'):
            with self.assertRaisesRegex(ValueError, 'line break or NUL'):
                check_address(bad, 'sender')
        with self.assertRaises(ValueError) as cm:
            check_address('\x1bc\x07evil@x.org', 'sender')
        self.assertEqual(str(cm.exception),
                         "sender contains a control character (U+001B):"
                         " '\\x1bc\\x07evil@x.org'")
        with self.assertRaisesRegex(TypeError, 'sender must be a string'):
            check_address(b'a@b.c', 'sender')
        with self.assertRaisesRegex(TypeError, 'must be a string'):
            check_address(None)

    def test_check_recipients(self):
        from zope.sendmail.addresses import check_recipients
        self.assertEqual(check_recipients(['a@b', 'c@d']), ('a@b', 'c@d'))
        self.assertEqual(check_recipients(x for x in ['a@b']), ('a@b',))
        with self.assertRaisesRegex(ValueError, 'no recipients'):
            check_recipients([])
        with self.assertRaisesRegex(TypeError, 'not a single str'):
            check_recipients('a@b')
        with self.assertRaisesRegex(TypeError, 'not int'):
            check_recipients(42)
        with self.assertRaisesRegex(TypeError, 'recipient must be a string'):
            check_recipients(['a@b', 42])
        with self.assertRaisesRegex(ValueError, 'line break'):
            check_recipients(['a@b\nBcc: victim@x'])
        with self.assertRaisesRegex(ValueError, 'not a single e-mail'):
            check_recipients(['a@b, c@d'])

    def test_crlf(self):
        from zope.sendmail.message import crlf
        self.assertEqual(crlf(b'a\nb\r\nc\rd\n'), b'a\r\nb\r\nc\r\nd\r\n')
        self.assertEqual(crlf(b'no line end'), b'no line end')
        self.assertEqual(crlf(b'a\r\n\r\nb'), b'a\r\n\r\nb')
