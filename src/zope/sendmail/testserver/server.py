"""The SMTP test server object that tests start, configure and inspect.

This module owns :class:`SMTPTestServer`: an ``aiosmtpd`` server on
127.0.0.1 (random free port) in a background thread, its start and stop
(including the throwaway certificates from
:mod:`zope.sendmail.testserver.certs` for STARTTLS and implicit TLS), AUTH
PLAIN/LOGIN credential checks, and the thread-safe records tests read:
every accepted message exactly as it arrived on the wire, the connection
counts, and blocking waits for both.  The fault settings come from
:mod:`zope.sendmail.testserver.faults`, the wire protocol from
:mod:`zope.sendmail.testserver.protocol`.
"""
import asyncio
import itertools
import logging
import shutil
import ssl
import tempfile
import threading

from aiosmtpd.smtp import DATA_SIZE_DEFAULT
from aiosmtpd.smtp import AuthResult

from zope.sendmail.testserver import certs
from zope.sendmail.testserver.faults import _Faults
from zope.sendmail.testserver.protocol import _Controller
from zope.sendmail.testserver.transcript import _Transcript


# One logger for the whole test server subpackage.
log = logging.getLogger(__package__)


class SMTPTestServer(_Faults, _Transcript):
    """SMTP server on 127.0.0.1 for tests; faults: see :mod:`.faults`.

    ``starttls`` offers STARTTLS; ``implicit_tls`` speaks TLS from the first
    byte (like port 465).  ``auth`` (``{user: password}`` or a ``(user,
    password)`` pair) offers and requires AUTH PLAIN/LOGIN; with STARTTLS
    only after it, unless ``auth_require_tls=False``.  ``wrong_certificate``
    (True meaning 'hostname', or a :data:`certs.KINDS` name) makes the
    server present a certificate that ``client_context()`` rejects.
    ``oauth2`` (``{user: token}``, kept as ``oauth2_tokens``) offers and
    requires AUTH XOAUTH2 (:mod:`.xoauth2`); ``smtputf8`` offers SMTPUTF8.
    ``transcript()`` shows what went over the wire (:mod:`.transcript`).
    ``data_size_limit``: the biggest message taken, in bytes (aiosmtpd's
    32 MiB by default; None for no limit), offered as ``SIZE``.

    ``port``: the port to listen on; 0 (the default) lets the system
    choose one.  A server started again on the port it had (a relay
    coming back) is a new server on that port.

    After ``start()``: ``host``, ``port``, ``ca_file`` (the test CA's PEM).
    """

    host = '127.0.0.1'

    def __init__(self, starttls=False, implicit_tls=False, auth=None,
                 auth_require_tls=True, wrong_certificate=False,
                 oauth2=None, smtputf8=False,
                 data_size_limit=DATA_SIZE_DEFAULT, port=0):
        if starttls and implicit_tls:
            raise ValueError('choose one of starttls and implicit_tls')
        self.starttls, self.implicit_tls = starttls, implicit_tls
        if isinstance(auth, (tuple, list)):
            auth = dict([auth])
        self.users = dict(auth or {})
        self._oauth2, self.smtputf8 = dict(oauth2 or {}), smtputf8
        self.data_size_limit = data_size_limit
        # aiosmtpd counts only STARTTLS sessions as encrypted, so requiring
        # TLS for AUTH would make AUTH impossible under implicit TLS.
        self.auth_require_tls = bool(auth_require_tls and starttls)
        self.certificate = ('hostname' if wrong_certificate is True
                            else wrong_certificate or 'good')
        if self.certificate not in certs.KINDS:
            raise ValueError(f'wrong_certificate={wrong_certificate!r}')
        self.ca_file = self._controller = self._tmpdir = None
        self.port = port or None
        self._listen_port = port
        self._cond = threading.Condition()
        self._messages, self._sessions = [], set()
        self._connections = self._open = 0
        self._ids = itertools.count(1)
        self.reset()

    def start(self):
        """Start serving; return self once connections are accepted."""
        if self._controller is not None:
            raise RuntimeError('SMTPTestServer already started')
        self._tmpdir = tempfile.mkdtemp(prefix='zope.sendmail-smtp-')
        try:
            self.ca_file, cert, key = certs.write(self._tmpdir,
                                                  self.certificate)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self._controller = _Controller(
                self, ssl_context=context if self.implicit_tls else None,
                tls_context=context if self.starttls else None,
                authenticator=self._authenticate,
                auth_require_tls=self.auth_require_tls,
                require_auth=bool(self.users or self._oauth2),
                enable_SMTPUTF8=self.smtputf8,
                data_size_limit=self.data_size_limit)
            self._controller.start()
            self.port = self._controller.port
            # Forget the connection of the controller's ready check.
            self.wait_until_idle()
            with self._cond:
                self._connections = 0
            self._reset_transcript()
        except BaseException:
            self.stop()
            raise
        log.info('SMTP test server listening on %s:%s', self.host, self.port)
        return self

    def stop(self):
        """Stop the server and its thread, remove the certificates."""
        controller, self._controller = self._controller, None
        try:
            if controller is not None and controller.loop.is_running():
                asyncio.run_coroutine_threadsafe(
                    self._close_all(controller), controller.loop).result(5)
        finally:
            if controller is not None:
                controller.stop(no_assert=True)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = self.ca_file = None

    async def _close_all(self, controller):
        # Stop listening and abort clients (stalled ones, or ones a test
        # leaked) so their tasks end before the loop does.  Let in-flight
        # accepts finish first: asyncio 3.11 leaks the socket of an accept
        # that completes after the listener closed.
        await asyncio.sleep(0.01)
        controller.server.close()
        for _ in range(100):
            # Sweep repeatedly: a connection accepted just before close()
            # reaches connection_made only a loop iteration later.
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.abort()
            await asyncio.sleep(0.01)
            if not self._sessions:
                break

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def client_context(self):
        """A verifying client ``ssl.SSLContext`` that trusts the test CA."""
        if self.ca_file is None:
            raise RuntimeError('start the server first')
        return ssl.create_default_context(cafile=self.ca_file)

    def reset(self):
        """Forget messages and the connection count; clear all faults;
        make the ``oauth2`` tokens the valid ones again."""
        self.oauth2_tokens = dict(self._oauth2)
        with self._cond:
            self._messages.clear()
            self._connections = 0
        self._reset_faults()
        self._reset_transcript()

    @property
    def messages(self):
        """Snapshot list of the :class:`Message` records received."""
        with self._cond:
            return list(self._messages)

    @property
    def connections(self):
        """TCP connections accepted since the last reset."""
        with self._cond:
            return self._connections

    @property
    def open_connections(self):
        """Connections currently open (not reset: it mirrors reality)."""
        with self._cond:
            return self._open

    def wait_for(self, n=1, timeout=5):
        """Block until ``n`` messages arrived; return ``messages``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n,
                                       timeout):
                raise AssertionError(
                    f'SMTP test server: expected at least {n} message(s) '
                    f'within {timeout}s, got {len(self._messages)}')
            return list(self._messages)

    def wait_until_idle(self, timeout=5):
        """Block until no connection is open."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._open == 0, timeout):
                raise AssertionError(
                    f'SMTP test server: {self._open} connection(s) still '
                    f'open after {timeout}s')

    # Called from the server thread.

    def _accepted(self):
        with self._cond:
            self._connections += 1
        return next(self._ids)

    def _opened(self, session):
        with self._cond:
            self._sessions.add(session)
            self._open += 1

    def _closed(self, session):
        with self._cond:
            self._sessions.discard(session)
            self._open -= 1
            self._cond.notify_all()

    def _record(self, message):
        log.debug('recorded %r', message[:3])
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def _authenticate(self, smtp, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode('utf-8', 'replace')
        password = auth_data.password.decode('utf-8', 'replace')
        ok = not self.reject_auth and self.users.get(login) == password
        # handled=False lets aiosmtpd send its standard 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=login)
