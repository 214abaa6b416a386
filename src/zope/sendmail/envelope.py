"""The envelope lines of a queue file, and checks of addresses.

A queued message is stored as two lines, ``X-Zope-From: <sender>`` and
``X-Zope-To: <recipients joined by ", ">``, each ending in a bare LF,
followed by the message.  This is the format of zope.sendmail 7.3; both
directions live here so that they cannot drift apart.  The message bytes are
stored as they are to be sent (with CRLF line endings).
"""
import re
from email.utils import getaddresses

from zope.sendmail.addresses import join_address
from zope.sendmail.addresses import split_address
from zope.sendmail.addresses import stored_address
from zope.sendmail.addresses import wire_address


FROM_PREFIX = b'X-Zope-From: '
TO_PREFIX = b'X-Zope-To: '

_FORBIDDEN = re.compile('[\r\n\x00]')
_MESSAGE_ID = re.compile(rb'^message-id:[ \t]*<([^>\r\n]*)>', re.I | re.M)
_LINE_ENDINGS = re.compile(rb'\r\n|\r|\n')
_PLAIN_ADDRESS = re.compile(r'[^\s,;:<>()\[\]"\\@]+@[^\s,;:<>()\[\]"\\@]+')
_PLAIN_LIST = re.compile(
    _PLAIN_ADDRESS.pattern + '(?:, ' + _PLAIN_ADDRESS.pattern + ')*')


class EnvelopeError(ValueError):
    """A queue file does not start with the two envelope lines."""


def check_address(address, what='address'):
    """Return *address* if it is safe to put in an envelope, else raise.

    *what* names the address in the error (``"sender"``, ``"recipient"``).
    CR, LF and NUL are refused because they would let the address inject
    header lines into the queue file or commands into the SMTP session; a
    domain that is not a valid internationalized domain name because it
    could never go on the wire (`zope.sendmail.addresses`).
    """
    if not isinstance(address, str):
        raise TypeError(
            f'{what} must be a string, not {type(address).__name__}:'
            f' {address!r}')
    if _FORBIDDEN.search(address):
        raise ValueError(
            f'{what} contains a line break or NUL character: {address!r}')
    wire_address(address, what)
    return address


def check_recipients(toaddrs):
    """Return *toaddrs* as a tuple of checked recipient strings.

    Each recipient must be one address (a display name may contain commas
    inside quotes), so that the ``X-Zope-To`` line reads back as written.
    """
    if isinstance(toaddrs, (str, bytes)):
        raise TypeError(
            f'toaddrs must be a sequence of addresses, not a single'
            f' {type(toaddrs).__name__}: {toaddrs!r}')
    try:
        toaddrs = tuple(toaddrs)
    except TypeError:
        raise TypeError(
            f'toaddrs must be a sequence of addresses, not'
            f' {type(toaddrs).__name__}') from None
    if not toaddrs:
        raise ValueError('no recipients given (toaddrs is empty)')
    for address in toaddrs:
        check_address(address, 'recipient')
        if _PLAIN_ADDRESS.fullmatch(address):
            continue  # the common case, without the email parser's cost
        parsed = [a for a in getaddresses([address]) if a[1]]
        if len(parsed) != 1:
            raise ValueError(
                f'recipient is not a single e-mail address: {address!r}')
    if not all(_PLAIN_ADDRESS.fullmatch(a) for a in toaddrs):
        # What the processor reads back must be what was written, or the
        # message could never be sent (nor, at worst, even be read).
        stored = [stored_address(a) for a in toaddrs]
        back = read_recipients(', '.join(stored))
        if [split_address(a)[1] for a in back] != \
                [split_address(a)[1] for a in stored]:
            raise ValueError(f'recipients {list(toaddrs)!r} would not read'
                             f' back from the queue file as given')
    return toaddrs


def crlf(message):
    """Return the bytes *message* with every line ending made CRLF."""
    # The common cases without the (slow) regex: all LF, or all CRLF.
    if b'\r' not in message:
        return message.replace(b'\n', b'\r\n')
    pairs = message.count(b'\r\n')
    if pairs == message.count(b'\n') == message.count(b'\r'):
        return message
    return _LINE_ENDINGS.sub(b'\r\n', message)


def format_envelope(fromaddr, toaddrs):
    """Return the two envelope lines (bytes) that start a queue file.

    The addresses are UTF-8, with Unicode domains as their A-labels
    (`stored_address`), which zope.sendmail 7.3 reads too.
    """
    return b''.join((
        FROM_PREFIX, stored_address(fromaddr, 'sender').encode('utf-8'),
        b'\n', TO_PREFIX, ', '.join(
            stored_address(a, 'recipient') for a in toaddrs).encode('utf-8'),
        b'\n',
    ))


def read_recipients(to_line):
    """The recipients of the text of an ``X-Zope-To`` line, as a tuple;
    those with display names in ``Name <address>`` form."""
    if _PLAIN_LIST.fullmatch(to_line):
        return tuple(to_line.split(', '))  # no parsing needed
    return tuple(join_address(*pair) for pair in getaddresses([to_line])
                 if pair[1])


def parse_envelope(data):
    """Split queue file contents into ``(fromaddr, toaddrs, message)``.

    *toaddrs* is a tuple; recipients with display names come back in
    ``"Name" <address>`` form.  Raises `EnvelopeError` when the data does
    not start with both envelope lines or names no recipient.
    """
    try:
        first, second, message = data.split(b'\n', 2)
    except ValueError:
        raise EnvelopeError('queue file is truncated:'
                            ' fewer than two envelope lines') from None
    # 7.3 wrote bare LF; tolerate a CR left by a tool that rewrote the file.
    first, second = first.rstrip(b'\r'), second.rstrip(b'\r')
    if not first.startswith(FROM_PREFIX):
        raise EnvelopeError(f'queue file does not start with X-Zope-From:'
                            f' {first[:60]!r}')
    if not second.startswith(TO_PREFIX):
        raise EnvelopeError(f'second line of queue file is not X-Zope-To:'
                            f' {second[:60]!r}')
    try:
        fromaddr = first[len(FROM_PREFIX):].decode('utf-8')
        to_line = second[len(TO_PREFIX):].decode('utf-8')
    except UnicodeDecodeError as e:
        raise EnvelopeError(f'envelope is not UTF-8: {e}') from None
    toaddrs = read_recipients(to_line)
    if not toaddrs:
        raise EnvelopeError(f'X-Zope-To names no recipient: {to_line!r}')
    return fromaddr, toaddrs, message


def message_id_of(message):
    """The Message-Id of *message* (bytes), without brackets, or None."""
    end = message.find(b'\r\n\r\n')
    match = _MESSAGE_ID.search(message, 0, end if end >= 0 else len(message))
    return match.group(1).decode('ascii', 'replace') if match else None
