"""The aiosmtpd side of the SMTP test server: the wire protocol.

This module owns what runs in the server thread's event loop: the
:class:`Message` record of an accepted message, the ``aiosmtpd`` SMTP
subclass (one per connection: connection accounting, stalling, reply
delays, dropping connections), the handler hooks (envelope checks, the
injected reply faults, recording) and the controller that starts the
server thread.  Every hook reports to, and reads its faults from, the
owning :class:`~zope.sendmail.testserver.server.SMTPTestServer`.
"""
import asyncio
import logging
from typing import NamedTuple
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Session
from aiosmtpd.smtp import TLSSetupException
from aiosmtpd.smtp import syntax

from zope.sendmail.testserver.xoauth2 import _XOAuth2Handler


# One logger for the whole test server subpackage.
log = logging.getLogger(__package__)


class Message(NamedTuple):
    """One message accepted by the server."""
    mail_from: str
    rcpt_tos: list       # accepted recipients only
    data: bytes          # as sent, dot-unstuffed, line endings untouched
    mail_options: list   # e.g. ['BODY=8BITMIME', 'SMTPUTF8']
    peer: tuple
    connection: int      # unique per TCP connection for the server's life
    tls: bool
    auth_user: Optional[str]


class _Session(Session):
    # aiosmtpd 1.4 assigns the deprecated ``login_data`` on every successful
    # AUTH and logs a warning each time; a plain attribute keeps it quiet.
    login_data = None


class _SMTP(SMTP):
    """One connection: accounting plus the faults the hooks can't express."""

    def __init__(self, testserver, connection_id, *args, require_auth,
                 **kw):
        super().__init__(*args, **kw)
        self.testserver, self.connection_id = testserver, connection_id
        self._made = self._lost = False
        # Set after __init__: passing auth_required with auth_require_tls
        # False makes aiosmtpd warn on every single connection.
        self._auth_required = require_auth

    # What the next reply answers (the transcript follows the commands).
    replying_to = 'greeting'

    def _create_session(self):
        return _Session(self.loop)

    def connection_made(self, transport):
        # STARTTLS calls this again with the TLS transport: count TCP once.
        if not self._made:
            self._made = True
            self.testserver._opened(self)
        super().connection_made(transport)

    def connection_lost(self, error):
        # aiosmtpd calls this itself after a failed STARTTLS handshake, so it
        # can come twice; open_connections must stay exact.
        if self._made and not self._lost:
            self._lost = True
            self.testserver._release(self)
            self.testserver._closed(self)
        super().connection_lost(error)

    async def _handle_client(self):
        # aiosmtpd's per-connection task, whose first act is the greeting.
        try:
            while self.testserver.stall:
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            # The client's EOF cancels this task but leaves the transport
            # half-open; close it as aiosmtpd's own command loop would.
            if self.transport is not None:
                self.transport.close()
            raise
        self.testserver._maybe_drop(self, 'connect')
        if not self.testserver._admit(self):
            # The connection limit: refused in the greeting, then closed.
            await self.push('432 4.3.2 Concurrent connections limit'
                            ' exceeded')
            self.transport.close()
            return
        await super()._handle_client()

    def eof_received(self):
        # aiosmtpd cancels the command loop on EOF but, when that happens
        # outside the loop's own handler (e.g. while a delayed reply
        # sleeps), leaves the transport half-open: a client that hung up
        # would count as connected for ever.
        super().eof_received()
        if self.transport is not None:
            self.transport.close()
        return False

    def data_received(self, data):
        self.testserver._heard(self, data)
        super().data_received(data)

    async def push(self, status):
        srv = self.testserver
        if srv.endless_reply is not None and \
                srv.endless_reply == self.replying_to:
            await self._endless(status)
        delay = srv.delay
        # Once per reply, not per line of a multi-line one ('250-...').
        if delay and status[3:4] not in ('-', b'-'):
            await asyncio.sleep(delay)
        srv._said(self, status)
        if self.replying_to == 'greeting' and srv.trickle:
            await self._trickle(status, srv.trickle)
            return
        await super().push(status)

    async def _endless(self, status):
        """Send continuation lines of *status*'s code until the client
        hangs up; then end the session."""
        code = (status if isinstance(status, bytes)
                else status.encode('ascii'))[:3]
        self.testserver._said(self, '<endless reply>')
        lines = 0
        try:
            # Not only is_closing(): a STARTTLS transport does not say
            # when the connection under it is gone.
            while not self._lost and not self.transport.is_closing():
                # A hundred lines per write, then wait for the client to
                # read them (drain): the server's memory stays bounded.
                self._writer.write(b''.join(
                    b'%s-endless %d\r\n' % (code, lines + n)
                    for n in range(1, 101)))
                lines += 100
                self.testserver.endless_lines += 100
                await self._writer.drain()
                # drain() may return at once (a STARTTLS transport that
                # lost its connection): let the loop see the loss.
                await asyncio.sleep(0)
        except (ConnectionError, AttributeError):
            pass  # the client hung up (the transport may be gone)
        if self.transport is not None:
            self.transport.close()
        raise asyncio.CancelledError()  # as drop(): the session ends

    async def _trickle(self, status, rate):
        """Send *status* a byte at a time, *rate* bytes a second."""
        data = (status if isinstance(status, bytes)
                else status.encode('ascii')) + b'\r\n'
        for n in range(len(data)):
            if self.transport is None or self.transport.is_closing():
                raise asyncio.CancelledError()  # the client hung up
            self._writer.write(data[n:n + 1])
            await asyncio.sleep(1 / rate)

    @syntax('STARTTLS', when='tls_context')
    async def smtp_STARTTLS(self, arg):
        reply = self.testserver._starttls_reply
        if reply is not None and not arg:
            await self.push(reply)
            return
        await super().smtp_STARTTLS(arg)

    @syntax('DATA')
    async def smtp_DATA(self, arg):
        # No handler hook runs before the 354, so drop 'data' here.
        self.testserver._maybe_drop(self, 'data')
        await super().smtp_DATA(arg)

    def drop(self):
        """Close the connection without replying; end the command loop."""
        log.debug('dropping SMTP connection %d', self.connection_id)
        self.transport.close()
        # aiosmtpd unwinds a CancelledError like a client disconnect: it
        # closes the writer and ends the task, so no reply is ever sent.
        raise asyncio.CancelledError()


class _Handler(_XOAuth2Handler):
    """aiosmtpd handler hooks: envelope checks, faults and recording."""

    def __init__(self, testserver):
        self.srv = testserver

    async def handle_exception(self, error):
        # Without this hook aiosmtpd logs failed STARTTLS handshakes, which
        # wrong-certificate tests provoke on purpose, as errors.
        if isinstance(error, TLSSetupException):
            log.debug('STARTTLS handshake failed: %r', error.__cause__)
        else:
            log.warning('SMTP test server error', exc_info=error)
        return f'500 Error: ({type(error).__name__}) {error}'

    async def handle_HELO(self, smtp, session, envelope, hostname):
        self.srv._maybe_drop(smtp, 'ehlo')
        if self.srv.refuse_helo:
            return '554 5.7.1 go away'
        session.host_name = hostname
        return f'250 {smtp.hostname}'

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        self.srv._maybe_drop(smtp, 'ehlo')
        if self.srv.refuse_ehlo:
            return ['502 5.5.1 EHLO not implemented, try HELO']
        session.host_name = hostname
        # aiosmtpd advertises every mechanism it has, with or without
        # anything to log in with: offer only those configured.
        mechanisms = ['LOGIN', 'PLAIN'] * bool(self.srv.users) + \
            ['XOAUTH2'] * bool(self.srv._oauth2)
        return [('250-AUTH ' + ' '.join(mechanisms)) if r.startswith(
            '250-AUTH') else r for r in responses
            if mechanisms or not r.startswith('250-AUTH')]

    async def handle_MAIL(self, smtp, session, envelope, address, options):
        self.srv._maybe_drop(smtp, 'mail')
        if self.srv._mail_reply:
            return self.srv._mail_reply
        throttled = self.srv._rate_reply()
        if throttled:
            return throttled
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return '250 OK'

    async def handle_RCPT(self, smtp, session, envelope, address, options):
        self.srv._maybe_drop(smtp, 'rcpt')
        reply = self.srv._rcpt_reply(address, len(envelope.rcpt_tos))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return '250 OK'

    async def handle_DATA(self, smtp, session, envelope):
        self.srv._maybe_drop(smtp, 'dot')
        if self.srv._data_reply:
            return self.srv._data_reply
        self.srv._record(Message(
            envelope.mail_from, list(envelope.rcpt_tos),
            envelope.original_content, list(envelope.mail_options),
            session.peer, smtp.connection_id,
            smtp.transport.get_extra_info('ssl_object') is not None,
            session.auth_data if session.authenticated else None))
        return '250 2.0.0 OK: queued'

    async def handle_RSET(self, smtp, session, envelope):
        self.srv._maybe_drop(smtp, 'rset')
        return '250 OK'

    async def handle_QUIT(self, smtp, session, envelope):
        self.srv._maybe_drop(smtp, 'quit')
        self.srv._release(smtp)
        return '221 Bye'


class _Controller(Controller):

    def __init__(self, testserver, **kw):
        self.testserver = testserver
        super().__init__(_Handler(testserver), hostname=testserver.host,
                         port=testserver._listen_port,
                         server_hostname='localhost', **kw)

    def factory(self):
        return _SMTP(self.testserver, self.testserver._accepted(),
                     self.handler, loop=self.loop, **self.SMTP_kwargs)

    def _trigger_server(self):
        # port=0 let the OS pick a free port; the ready check connects to
        # self.port, so learn the real one first.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
