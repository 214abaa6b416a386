"""A message as it goes after ``DATA``, made chunk by chunk, never whole.

SMTP wants CRLF line endings, a dot doubled at the start of every line
that has one, and ``CRLF . CRLF`` at the end.  smtplib makes all of that
out of the whole message at once, a copy for each step: five times the
message for one send.  `data_chunks` does it one slice at a time, so that
sending costs no more than a slice however big the message.  `is_ascii`
and `has_crlf_only` answer what the MAIL command needs to know (``BODY``,
``SIZE``) of a message that is a view of a larger buffer (the queue
processor sends a view of the queue file, to avoid copying it), again a
slice at a time.
"""
from zope.sendmail.message import crlf


#: Bytes per slice: big enough that the work per slice is noise next to
#: the socket's, small enough to be no memory worth counting.
CHUNK = 256 * 1024


def _slices(message, size=CHUNK, overlap=0):
    """The bytes of *message* (bytes-like), *size* at a time, each with
    the next *overlap* bytes too."""
    view = memoryview(message).cast('B')
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size + overlap])


def is_ascii(message, size=CHUNK):
    """Whether the bytes-like *message* is all ASCII."""
    if isinstance(message, bytes):
        return message.isascii()
    return all(piece.isascii() for piece in _slices(message, size))


def has_crlf_only(message, size=CHUNK):
    """Whether every line ending of the bytes-like *message* is CRLF."""
    if isinstance(message, bytes):
        return crlf(message) is message
    pairs = lfs = crs = 0
    for piece in _slices(message, size, overlap=1):
        # The byte after the slice completes a CRLF starting at its end;
        # lone CRs and LFs are counted within the slice only.
        end = len(piece) - 1 if len(piece) > size else len(piece)
        pairs += piece.count(b'\r\n')
        lfs += piece.count(b'\n', 0, end)
        crs += piece.count(b'\r', 0, end)
    return pairs == lfs == crs


def data_chunks(message, size=CHUNK):
    """Yield what follows the ``DATA`` command for the bytes-like
    *message*: its bytes with every line ending made CRLF and a dot
    doubled at the start of each line, then CRLF if the message does not
    end with one (an empty message included, as smtplib does), then the
    final ``.`` CRLF.  Each chunk is about *size* bytes; the end comes
    with the last one."""
    carry = b''        # a CR whose LF, if any, begins the next slice
    line_start = True  # what was made so far ends a line
    ends_crlf = False
    last = b''         # made, not yet yielded: the end joins it
    for piece in _slices(message, size):
        piece = carry + piece
        carry = b''
        if piece.endswith(b'\r'):
            carry, piece = b'\r', piece[:-1]
        piece = crlf(piece).replace(b'\n.', b'\n..')
        if not piece:
            continue
        if line_start and piece.startswith(b'.'):
            piece = b'.' + piece
        line_start = ends_crlf = piece.endswith(b'\r\n')
        if last:
            yield last
        last = piece
    if carry:  # a lone CR at the very end is a line ending too
        ends_crlf = True
        last += b'\r\n'
    # One write with the last slice: the end written on its own would
    # wait for the relay's delayed ACK of the slice before it (Nagle),
    # some 40 ms a message on a reused connection.
    yield last + (b'.\r\n' if ends_crlf else b'\r\n.\r\n')
