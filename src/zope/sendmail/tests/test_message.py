"""Tests of send()'s preparation of the message: bytes, CRLF, Message-Id."""
import email.message
import unittest


class PrepareMessageTests(unittest.TestCase):

    def _callFUT(self, message):
        from zope.sendmail.delivery import prepare_message
        return prepare_message(message)

    def test_adds_message_id(self):
        message_id, data = self._callFUT(b'Subject: x\n\nbody\n')
        self.assertNotIn('<', message_id)
        self.assertIn('@', message_id)
        self.assertEqual(
            data, b'Message-Id: <%s>\r\nSubject: x\r\n\r\nbody\r\n'
            % message_id.encode())

    def test_ids_are_unique(self):
        ids = {self._callFUT(b'Subject: x\n\n')[0] for i in range(1000)}
        self.assertEqual(len(ids), 1000)

    def test_keeps_existing_message_id(self):
        message_id, data = self._callFUT(
            b'Subject: x\r\nMESSAGE-ID: <abc.123@example.com>\r\n\r\nb')
        self.assertEqual(message_id, 'abc.123@example.com')
        self.assertEqual(data.count(b'abc.123@example.com'), 1)
        self.assertFalse(data.startswith(b'Message-Id'))

    def test_message_id_in_body_is_not_a_header(self):
        message_id, data = self._callFUT(
            b'Subject: x\n\nMessage-Id: <not@header>\n')
        self.assertNotEqual(message_id, 'not@header')

    def test_malformed_message_id(self):
        for bad in (b'abc@example.com', b'<a b@c>', b'<a@b', b'<>'):
            with self.assertRaisesRegex(ValueError,
                                        'malformed Message-Id header'):
                self._callFUT(b'Message-Id: %s\n\nbody' % bad)

    def test_control_characters_in_message_id(self):
        for value, code in ((b'<\x1b[8m@x.org>', '001B'),
                            (b'<a\x7f@x.org>', '007F'),
                            ('<a\x85@x.org>'.encode(), '0085'),
                            ('<a\x9b@x.org>'.encode(), '009B')):
            with self.assertRaises(ValueError) as cm:
                self._callFUT(b'Message-Id: %s\n\nbody' % value)
            problem = 'a line break' if code == '0085' else \
                'a control character'
            self.assertEqual(str(cm.exception),
                             f'Message-Id contains {problem} (U+{code}):'
                             f' {value.decode()!r}')

    def test_utf8_message_id_returned_as_sent(self):
        message_id, data = self._callFUT('Message-Id: <jö@x.org>\n\nb')
        self.assertEqual(message_id, 'jö@x.org')
        with self.assertRaisesRegex(ValueError, "'<j.@x.org>' is not UTF-8"):
            self._callFUT(b'Message-Id: <j\xff@x.org>\n\nb')

    def test_str_is_utf8(self):
        message_id, data = self._callFUT('Subject: \N{SNOWMAN}\n\n\N{EM DASH}')
        self.assertTrue(data.endswith(
            b'Subject: \xe2\x98\x83\r\n\r\n\xe2\x80\x94'))

    def test_email_message(self):
        msg = email.message.Message()
        msg['Subject'] = 'Hello'
        msg['Message-Id'] = '<given@example.com>'
        msg.set_payload('line one\nline two\n')
        message_id, data = self._callFUT(msg)
        self.assertEqual(message_id, 'given@example.com')
        self.assertIn(b'line one\r\nline two\r\n', data)
        self.assertNotIn(b'\n', data.replace(b'\r\n', b''))

    def test_unsupported_type(self):
        for bad in (None, 42, ['Subject: x']):
            with self.assertRaisesRegex(TypeError, 'message must be bytes'):
                self._callFUT(bad)
