"""The envelope lines of a queue file.

A queued message is stored as two lines, ``X-Zope-From: <sender>`` and
``X-Zope-To: <recipients joined by ", ">``, each ending in a bare LF,
followed by the message.  This is the format of zope.sendmail 7.3; both
directions live here so that they cannot drift apart.  The message bytes are
stored as they are to be sent (with CRLF line endings).
"""
from zope.sendmail.addresses import control_character
from zope.sendmail.addresses import read_recipients
from zope.sendmail.addresses import stored_address


FROM_PREFIX = b'X-Zope-From: '
TO_PREFIX = b'X-Zope-To: '


class EnvelopeError(ValueError):
    """A queue file does not start with the two envelope lines."""


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
