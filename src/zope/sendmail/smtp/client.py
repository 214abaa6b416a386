"""smtplib's SMTP client, bounded against a relay that never stops talking.

`BoundedSMTP` (and `BoundedSMTP_SSL`, for TLS from the first byte) are
`smtplib.SMTP` with four methods changed, nothing rewritten:

- ``getreply``: a reply (the greeting included) has at most
  `MAX_REPLY_LINES` lines and `MAX_REPLY_BYTES` bytes, and must be complete
  within `DEADLINE_FACTOR` times ``timeout``.  smtplib bounds the length of
  a line and the wait for each read, not the number of lines nor the whole:
  an endless ``250-`` reply to EHLO (which comes before STARTTLS, so TLS
  settings cannot help) grows without end, and a reply trickled a byte at a
  time never times out.  Past a bound the connection is closed and
  `ReplyLimitError` says which bound (`zope.sendmail.smtp.classify` makes it a
  temporary failure, as a dropped connection is).
- ``data``: streams the message (bytes, or a memoryview of them) slice by
  slice (`zope.sendmail.smtp.datastream`) instead of building its dot-stuffed
  copies.
- ``auth`` and ``auth_cram_md5``: credentials go out as UTF-8 (RFC 4616
  for PLAIN; smtplib encodes them as ASCII, and its UnicodeEncodeError
  quotes a character of the password), and no exception carries a
  character of them.

`zope.sendmail.smtp.connection` uses these classes when the mailer's ``smtp``
factory is smtplib's own; a factory of the user's is used as given.
"""
import base64
import hmac
import io
import smtplib
import time

from zope.interface import implementer

from zope.sendmail.smtp.datastream import data_chunks
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import IBoundedSMTP


#: Lines in one reply.  The longest real replies, EHLO's, have a dozen or
#: two; a hundred leaves room for any relay and stops an endless one.
MAX_REPLY_LINES = 100
#: Bytes in one reply: a hundred lines of 640 bytes.  smtplib bounds a line
#: to 8 KB; without this a hundred of those would be 800 KB.
MAX_REPLY_BYTES = 64 * 1024
#: A reply must be complete within this many times ``timeout``: the wait
#: for each read is ``timeout``, and a few of those allow a slow relay its
#: pauses while a trickled reply cannot hold a commit (direct delivery) or
#: a processor for ever.
DEADLINE_FACTOR = 3

# Commands whose replies are named in errors; anything else sent is an
# AUTH response (a secret), which is named after the AUTH it continues.
_VERBS = frozenset(['EHLO', 'HELO', 'LHLO', 'MAIL', 'RCPT', 'DATA', 'RSET',
                    'NOOP', 'QUIT', 'STARTTLS', 'AUTH', 'VRFY', 'EXPN',
                    'HELP', 'BDAT'])


class ReplyLimitError(smtplib.SMTPException):
    """The relay's reply went past one of the bounds of `BoundedSMTP`; the
    connection is closed.  ``bound`` is ``'lines'``, ``'bytes'`` or
    ``'deadline'``."""

    def __init__(self, message, bound):
        super().__init__(message)
        self.bound = bound


class _DeadlinePassed(Exception):
    """The deadline of a reply passed while reading it (raised through
    the reader's buffer, which must not be closed from inside)."""


class _DeadlineReader(io.RawIOBase):
    """The socket of *client* as smtplib reads replies from it: each read
    waits ``timeout`` at most, and never past the deadline of the reply
    being read."""

    def __init__(self, client, sock):
        self._client = client
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        deadline = self._client._deadline
        timeout = self._sock.gettimeout()
        shortened = False
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed()
            if timeout is None or left < timeout:
                # Restored by getreply when the reply is complete.
                self._sock.settimeout(left)
                shortened = True
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            if shortened:
                raise _DeadlinePassed() from None
            raise


@implementer(IBoundedSMTP)
class BoundedSMTP(smtplib.SMTP):
    """`smtplib.SMTP` with bounded replies, a streamed DATA and UTF-8
    credentials; see `IBoundedSMTP` and the module docstring."""

    max_reply_lines = MAX_REPLY_LINES
    max_reply_bytes = MAX_REPLY_BYTES
    deadline_factor = DEADLINE_FACTOR

    _deadline = None
    _command = 'greeting'
    _peer = None

    def connect(self, host='localhost', port=0, source_address=None):
        """smtplib's ``connect``; the greeting is a reply like any other.
        """
        self._command, self._peer = 'greeting', f'{host}:{port}'
        return super().connect(host, port, source_address)

    def putcmd(self, cmd, args=''):
        """smtplib's ``putcmd``, remembering the command for errors."""
        verb = cmd.split(' ', 1)[0].upper()
        if verb in _VERBS:
            self._command = verb
        super().putcmd(cmd, args)

    def _limit(self, bound):
        """Close the connection; the `ReplyLimitError` for *bound*."""
        what = f'the reply to {self._command}' if self._command != \
            'greeting' else 'the greeting'
        detail = {
            'lines': f'had more than {self.max_reply_lines} lines',
            'bytes': f'had more than {self.max_reply_bytes} bytes',
            'deadline': f'was not complete within {self._reply_time:g} s'
                        f' ({self.deadline_factor} times the timeout)',
        }[bound]
        self.close()
        return ReplyLimitError(
            f'{what} of the relay {self._peer or self._host} {detail}',
            bound)

    @property
    def _reply_time(self):
        return self.deadline_factor * self.timeout

    def getreply(self):
        """smtplib's ``getreply``, within the bounds."""
        sock = self.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected('please run connect() first')
        if self.file is None:
            # Not sock.makefile: reads go through the deadline.
            self.file = io.BufferedReader(_DeadlineReader(self, sock))
        timeout = sock.gettimeout()
        if isinstance(self.timeout, (int, float)) and self.timeout > 0:
            self._deadline = time.monotonic() + self._reply_time
        lines, size = [], 0
        try:
            while True:
                try:
                    line = self.file.readline(smtplib._MAXLINE + 1)
                except _DeadlinePassed:
                    raise self._limit('deadline') from None
                except OSError as e:
                    self.close()
                    raise smtplib.SMTPServerDisconnected(
                        f'Connection unexpectedly closed: {e}') from e
                if not line:
                    self.close()
                    raise smtplib.SMTPServerDisconnected(
                        'Connection unexpectedly closed')
                if len(line) > smtplib._MAXLINE:
                    self.close()
                    raise smtplib.SMTPResponseException(500,
                                                        'Line too long.')
                size += len(line)
                if len(lines) >= self.max_reply_lines:
                    raise self._limit('lines')
                if size > self.max_reply_bytes:
                    raise self._limit('bytes')
                lines.append(line[4:].strip(b' \t\r\n'))
                try:
                    code = int(line[:3])
                except ValueError:
                    # As smtplib: a broken code ends the reply.
                    code = -1
                    break
                if line[3:4] != b'-':
                    break
        finally:
            self._deadline = None
            if self.sock is sock and sock.gettimeout() != timeout:
                sock.settimeout(timeout)
        return code, b'\n'.join(lines)

    def data(self, msg):
        """smtplib's ``data``, sending *msg* (bytes, or a memoryview of
        them) a slice at a time."""
        self.putcmd('data')
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):
            msg = msg.encode('ascii')  # as smtplib does
        for chunk in data_chunks(msg):
            self.send(chunk)
        self._command = 'end of DATA'
        return self.getreply()

    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        """smtplib's ``auth``, with responses encoded as UTF-8; the
        relay's replies are kept, with any response it echoed cut out."""
        mechanism = mechanism.upper()
        sent = []

        def encode(response):
            encoded = _utf8(response, mechanism)
            encoded = base64.b64encode(encoded).decode('ascii')
            sent.append(encoded)
            return encoded

        initial = authobject() if initial_response_ok else None
        if initial is not None:
            code, reply = self.docmd('AUTH', f'{mechanism} {encode(initial)}')
            self._auth_challenge_count = 1
        else:
            code, reply = self.docmd('AUTH', mechanism)
            self._auth_challenge_count = 0
        while code == 334:
            self._auth_challenge_count += 1
            challenge = base64.decodebytes(reply)
            # Not docmd: putcmd would take the response for a command.
            smtplib.SMTP.putcmd(self, encode(authobject(challenge)))
            code, reply = self.getreply()
            if self._auth_challenge_count > smtplib._MAXCHALLENGE:
                raise smtplib.SMTPException(
                    f'the relay keeps sending AUTH {mechanism} challenges'
                    f' (last reply {code})')
        if code in (235, 503):
            return code, reply
        for response in sent:
            # A relay quoting what it was sent would put the credentials
            # into the exception, and so into logs.  (Short ones, as an
            # empty answer to a challenge, would only mangle the reply.)
            if len(response) >= 8:
                reply = reply.replace(response.encode('ascii'), b'[...]')
        raise smtplib.SMTPAuthenticationError(code, reply)

    def auth_cram_md5(self, challenge=None):
        """smtplib's CRAM-MD5 response, with the password as UTF-8."""
        if challenge is None:
            return None
        key = _utf8(self.password, 'CRAM-MD5')
        return f'{self.user} {hmac.HMAC(key, challenge, "md5").hexdigest()}'


def _utf8(text, mechanism):
    """*text* (a credential) as UTF-8; an error naming no character of it
    when it cannot be (a lone surrogate)."""
    try:
        return text.encode('utf-8')
    except UnicodeEncodeError:
        pass  # raised below, outside this block: no exception context
    raise MailerConfigurationError(
        f'the credentials for AUTH {mechanism} cannot be encoded as UTF-8'
        f' (they hold a lone surrogate)')


class BoundedSMTP_SSL(BoundedSMTP, smtplib.SMTP_SSL):
    """`BoundedSMTP` over TLS from the first byte (SMTPS), closing the
    socket when the handshake fails instead of leaving it to the garbage
    collector."""

    def _get_socket(self, host, port, timeout):
        sock = smtplib.SMTP._get_socket(self, host, port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
