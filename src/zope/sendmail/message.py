"""The message as a delivery sends it: bytes with CRLF line endings and a
``Message-Id``, whose value (without angle brackets) ``send()`` returns;
and reading them back: `crlf`, `message_id_of`.
"""
import email.message
import os
import re
import secrets
import socket
import time
from email.parser import HeaderParser

from zope.sendmail.addresses import control_error
from zope.sendmail.display import printable


_MESSAGE_ID = re.compile(r'<[^<>\s]+>')
_MESSAGE_ID_HEADER = re.compile(rb'^message-id:[ \t]*<([^>\r\n]*)>',
                                re.I | re.M)
_LINE_ENDINGS = re.compile(rb'\r\n|\r|\n')
_hostname = socket.gethostname()


def make_message_id():
    """A new, globally unique message id, without angle brackets."""
    return '%s.%d.%s@%s' % (time.strftime('%Y%m%d%H%M%S'), os.getpid(),
                            secrets.token_hex(8), _hostname)


def prepare_message(message, new_id=make_message_id):
    """Return ``(message_id, message_bytes)`` for *message*.

    The bytes have CRLF line endings and a ``Message-Id`` header, added
    with the id ``new_id()`` returns when the message has none.  A
    ``Message-Id`` given that is not ``<left@right>`` or holds a control
    character is a ValueError.
    """
    if isinstance(message, email.message.Message):
        message = message.as_bytes()
    elif isinstance(message, str):
        message = message.encode('utf-8')
    elif isinstance(message, (bytes, bytearray, memoryview)):
        message = bytes(message)
    else:
        raise TypeError(
            f'message must be bytes, str or email.message.Message, not'
            f' {type(message).__name__}')
    message = crlf(message)
    end = message.find(b'\r\n\r\n')
    head = message if end < 0 else message[:end + 2]
    if b'message-id' in head.lower():
        # As UTF-8 (RFC 6532), so that the id returned is the one sent.
        value = HeaderParser().parsestr(
            head.decode('utf-8', 'surrogateescape')).get('Message-Id')
        if value is not None:
            if not isinstance(value, str):
                # compat32 makes a Header of a value with non-UTF-8 bytes.
                raise ValueError(f'malformed Message-Id header:'
                                 f' {str(value).strip()!r} is not UTF-8')
            value = value.strip()
            # send() returns the id, and logs and events show it.
            error = control_error('Message-Id', value)
            if error is not None:
                raise error
            if not _MESSAGE_ID.fullmatch(value):
                raise ValueError(f'malformed Message-Id header: {value!r}'
                                 f' (expected <left@right>)')
            return value[1:-1], message
    message_id = new_id()
    return message_id, b'Message-Id: <%s>\r\n%s' % (
        message_id.encode('ascii'), message)


def crlf(message):
    """Return the bytes *message* with every line ending made CRLF."""
    # The common cases without the (slow) regex: all LF, or all CRLF.
    if b'\r' not in message:
        return message.replace(b'\n', b'\r\n')
    pairs = message.count(b'\r\n')
    if pairs == message.count(b'\n') == message.count(b'\r'):
        return message
    return _LINE_ENDINGS.sub(b'\r\n', message)


def message_id_of(message, start=0):
    """The Message-Id of *message* (bytes; the part from *start*), without
    brackets, or None; printable (`zope.sendmail.display`), since it is
    read from a queue file and shown in logs, listings and events."""
    end = message.find(b'\r\n\r\n', start)
    match = _MESSAGE_ID_HEADER.search(message, start,
                                      end if end >= 0 else len(message))
    return printable(match.group(1).decode('utf-8', 'replace')) \
        if match else None
