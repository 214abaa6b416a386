"""The envelope lines of a queue file, and checks of addresses.

A queued message is stored as two lines, ``X-Zope-From: <sender>`` and
``X-Zope-To: <recipients joined by ", ">``, each ending in a bare LF,
followed by the message.  This is the format of zope.sendmail 7.3; both
directions live here so that they cannot drift apart.  The message bytes are
stored as they are to be sent (with CRLF line endings).
"""
import re
from email.utils import getaddresses

from zope.sendmail.addresses import control_character
from zope.sendmail.addresses import control_error
from zope.sendmail.addresses import NOT_WRITTEN
from zope.sendmail.addresses import join_address
from zope.sendmail.addresses import read_problem
from zope.sendmail.addresses import stored_address
from zope.sendmail.addresses import wire_address
from zope.sendmail.addresses import written_problem
from zope.sendmail.display import printable


FROM_PREFIX = b'X-Zope-From: '
TO_PREFIX = b'X-Zope-To: '

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
    A non-string is a TypeError.  A ValueError refuses an address that
    breaks a rule of `zope.sendmail.addresses` (a control character, which
    could inject header lines into the queue file, commands into the SMTP
    session or escape sequences into a terminal; a local part SMTP cannot
    carry; a domain that is not a host name, whatever mapping made it
    one), and a string that is not one address, or that the e-mail
    parser reads otherwise than the address the relay would be given.
    """
    _checked_wire(address, what)
    return address


def _checked_wire(address, what):
    """The wire form of *address* (`check_address`); empty for the empty
    sender (``''``, ``'<>'``)."""
    if not isinstance(address, str):
        raise TypeError(
            f'{what} must be a string, not {type(address).__name__}:'
            f' {address!r}')
    empty = address.strip() in ('', '<>')
    if not empty and not _PLAIN_ADDRESS.fullmatch(address):
        # Not the common case: is it written as one address?  (Then, once
        # its parts are checked, whether the e-mail parser, which the
        # queue file's reader uses, reads it as written.)
        error = control_error(what, address)
        if error is not None:
            raise error  # before the parser sees it
        problem = written_problem(address)
        if problem is NOT_WRITTEN:
            # A part of it may break a rule that says more ("the local
            # part 'Ann Lee' holds ' '"): that error first.
            wire_address(address, what)
        if problem is not None:
            raise ValueError(f'{what} is not a single e-mail address:'
                             f' {address!r} {problem}')
    wire = wire_address(address, what)[0]
    if not wire and not empty:
        # Something the parser makes nothing of (``Ann <@x.org>``) must
        # not pass for the empty sender.
        raise ValueError(f'{what} is not a single e-mail address:'
                         f' {address!r}')
    if not empty and not _PLAIN_ADDRESS.fullmatch(address):
        problem = read_problem(address)
        if problem is not None:
            raise ValueError(f'{what} is not a single e-mail address:'
                             f' {address!r} {problem}')
    return wire


def check_recipients(toaddrs):
    """Return *toaddrs* as a tuple of checked recipient strings.

    Each recipient must be one address (`check_address`; a display name
    may contain commas inside quotes), and the ``X-Zope-To`` line must
    read back as exactly these recipients: as many, each with the wire
    form it has here.  That is checked for every list, not only for those
    that look unusual, since a plain-looking address is not always what
    it seems.
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
    wires = []
    for address in toaddrs:
        wire = _checked_wire(address, 'recipient')
        if not wire:
            raise ValueError(
                f'recipient is not a single e-mail address: {address!r}')
        wires.append(wire)
    # What the processor reads back must be what was written, or the
    # message could go to others than these (or never be sent at all).
    back = read_recipients(', '.join(
        stored_address(a, 'recipient') for a in toaddrs))
    if back != toaddrs:  # when equal (the common case), so are wire forms
        try:
            same = [wire_address(a)[0] for a in back] == wires
        except ValueError:
            same = False
        if not same:
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
    not start with both envelope lines or names no recipient.  The error
    says what is wrong, never what the file holds: a queue file may be
    anything (a link to a secret, once), and the error goes to the log,
    the ``.reason-X`` file and the `IMailErrorEvent`.
    """
    fromaddr, toaddrs, start = split_envelope(data)
    return fromaddr, toaddrs, data[start:]


def split_envelope(data):
    """``(fromaddr, toaddrs, start)``: as `parse_envelope`, with the
    offset in *data* where the message starts instead of a copy of it
    (``memoryview(data)[start:]`` is the message, for nothing)."""
    first_end = data.find(b'\n')
    second_end = data.find(b'\n', first_end + 1) if first_end >= 0 else -1
    if second_end < 0:
        raise EnvelopeError('queue file is truncated:'
                            ' fewer than two envelope lines')
    first, second = data[:first_end], data[first_end + 1:second_end]
    # 7.3 wrote bare LF; tolerate a CR left by a tool that rewrote the file.
    first, second = first.rstrip(b'\r'), second.rstrip(b'\r')
    if not first.startswith(FROM_PREFIX):
        raise EnvelopeError('queue file does not start with an X-Zope-From'
                            ' line')
    if not second.startswith(TO_PREFIX):
        raise EnvelopeError('second line of queue file is not an X-Zope-To'
                            ' line')
    try:
        fromaddr = first[len(FROM_PREFIX):].decode('utf-8')
        to_line = second[len(TO_PREFIX):].decode('utf-8')
    except UnicodeDecodeError:
        raise EnvelopeError('envelope is not UTF-8') from None
    for name, line in (('X-Zope-From', fromaddr), ('X-Zope-To', to_line)):
        char = control_character(line)
        if char is not None:
            # Nothing send() writes: a crafted or damaged file, whose
            # text must reach no log, listing, reason or event.
            raise EnvelopeError(f'the {name} line holds a control character'
                                f' (U+{ord(char):04X})')
    toaddrs = read_recipients(to_line)
    if not toaddrs:
        raise EnvelopeError('X-Zope-To line names no recipient')
    return fromaddr, toaddrs, second_end + 1


def message_id_of(message, start=0):
    """The Message-Id of *message* (bytes; the part from *start*), without
    brackets, or None; printable (`zope.sendmail.display`), since it is
    read from a queue file and shown in logs, listings and events."""
    end = message.find(b'\r\n\r\n', start)
    match = _MESSAGE_ID.search(message, start,
                               end if end >= 0 else len(message))
    return printable(match.group(1).decode('utf-8', 'replace')) \
        if match else None
