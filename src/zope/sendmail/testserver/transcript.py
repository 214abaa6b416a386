"""What the SMTP test server heard and said, line by line.

This module owns the transcript of :class:`SMTPTestServer
<zope.sendmail.testserver.server.SMTPTestServer>` (a mixin of it): every
command line a client sent (``'C: MAIL FROM:<a@example.com> SIZE=42'``)
and every reply line (``'S: 250 OK'``), per connection, in order, so that
tests can show what went over the wire exactly.  The content of a message
(between the 354 reply and the final dot) is one ``'C: <message>'`` line:
``messages`` holds it byte for byte.  A STARTTLS session shows the lines
it carried in clear, as the client sent them.  ``reset()`` forgets it.
The connection's ``replying_to`` says which command (``'greeting'``
before the first, ``'dot'`` after a message) the next reply answers: some
faults play on it.
"""


# Commands a reply can answer (what else a client sends is an AUTH
# response, which belongs to the AUTH before it).
_VERBS = frozenset(['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP',
                    'QUIT', 'STARTTLS', 'AUTH', 'VRFY', 'EXPN', 'HELP'])


class _Transcript:
    """The transcript of :class:`SMTPTestServer`; see the module doc."""

    def transcript(self, connection=None):
        """The lines of the connection number *connection* (as
        :class:`Message` records number them), or of all connections."""
        with self._cond:
            return [line for number, line in self._lines
                    if connection is None or number == connection]

    def _reset_transcript(self):
        with self._cond:
            self._lines = []

    # Called from the server thread.

    def _heard(self, smtp, data):
        # Found by offsets: a message of many lines arrives in big chunks,
        # and cutting the rest of a chunk at each line would copy it as
        # many times as it has lines.
        buffer = getattr(smtp, '_partial', b'') + data
        start = 0
        while True:
            end = buffer.find(b'\n', start)
            if end < 0:
                break
            if getattr(smtp, '_in_data', False):
                if end - start <= 2 and \
                        buffer[start:end].rstrip(b'\r') == b'.':
                    smtp._in_data = False
                    smtp.replying_to = 'dot'
                    self._line(smtp, 'C: <message>')
            else:
                line = buffer[start:end].rstrip(b'\r')
                verb = line.split(b' ', 1)[0].upper()
                verb = verb.decode('ascii', 'replace')
                if verb in _VERBS:  # not an AUTH response: part of AUTH
                    smtp.replying_to = verb
                self._line(smtp, 'C: ' + line.decode('utf-8', 'replace'))
            start = end + 1
        smtp._partial = buffer[start:]

    def _said(self, smtp, status):
        if isinstance(status, bytes):
            status = status.decode('utf-8', 'replace')
        for line in status.splitlines():
            self._line(smtp, 'S: ' + line)
        if status.startswith('354'):
            smtp._in_data = True

    def _line(self, smtp, text):
        with self._cond:
            self._lines.append((smtp.connection_id, text))
