"""What the SMTP test server heard and said, line by line.

This module owns the transcript of :class:`SMTPTestServer
<zope.sendmail.testserver.server.SMTPTestServer>` (a mixin of it): every
command line a client sent (``'C: MAIL FROM:<a@example.com> SIZE=42'``)
and every reply line (``'S: 250 OK'``), per connection, in order, so that
tests can show what went over the wire exactly.  The content of a message
(between the 354 reply and the final dot) is one ``'C: <message>'`` line:
``messages`` holds it byte for byte.  A STARTTLS session shows the lines
it carried in clear, as the client sent them.  ``reset()`` forgets it.
"""


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
        smtp._partial = getattr(smtp, '_partial', b'') + data
        while b'\n' in smtp._partial:
            line, smtp._partial = smtp._partial.split(b'\n', 1)
            line = line.rstrip(b'\r')
            if getattr(smtp, '_in_data', False):
                if line == b'.':
                    smtp._in_data = False
                    self._line(smtp, 'C: <message>')
                continue
            self._line(smtp, 'C: ' + line.decode('utf-8', 'replace'))

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
