"""Where Prometheus finds the metrics: over HTTP, or in a file.

`MetricsServer` serves a registry's metrics over HTTP (``GET /metrics``,
any path) on 127.0.0.1 by default, in a thread of ``prometheus_client``'s
WSGI server, with a lifecycle: `MetricsServer.start` binds in the caller
(so that a port in use is the caller's error) and `MetricsServer.stop`
shuts the server down and joins its thread.  `write_textfile` writes a
registry's metrics for node_exporter's textfile collector atomically: to
a temporary file beside it, synced, then renamed over it, so the
collector never reads half a file.  Needs ``prometheus_client`` (the
extra ``zope.sendmail[metrics]``).
"""
import logging
import os
import tempfile

from prometheus_client import generate_latest
from prometheus_client import start_http_server
from zope.interface import implementer

from zope.sendmail.interfaces import IMetricsServer


log = logging.getLogger(__name__)

#: Where `MetricsServer` listens unless told otherwise: this host only
#: (metrics name queues and relays; exposing them is a choice).
DEFAULT_ADDRESS = '127.0.0.1'


@implementer(IMetricsServer)
class MetricsServer:
    """Serves the metrics of *registry* on *address* and *port* (0: a
    free port, which `port` tells once started)."""

    def __init__(self, registry, port, address=DEFAULT_ADDRESS):
        self.registry = registry
        self.address = address
        self.port = port
        self._server = self._thread = None

    def __repr__(self):
        return f'<MetricsServer http://{self.url_host}:{self.port}/metrics>'

    @property
    def url_host(self):
        return f'[{self.address}]' if ':' in self.address else self.address

    def start(self):
        """Listen and serve in a daemon thread; raises OSError (a port in
        use, an address not of this host) here, in the caller."""
        if self._server is not None:
            raise RuntimeError(f'{self!r} is started already')
        self._server, self._thread = start_http_server(
            self.port, addr=self.address, registry=self.registry)
        self._thread.name = 'zope.sendmail metrics server'
        self.port = self._server.server_address[1]
        log.info('serving the metrics on http://%s:%d/metrics',
                 self.url_host, self.port)
        return self

    def stop(self, timeout=None):
        """Stop serving: close the socket and join the thread (at most
        *timeout* seconds); return whether it stopped.  Harmless when not
        started or called twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return True
        server.shutdown()  # ends serve_forever, within its poll interval
        server.server_close()
        thread.join(timeout)
        return not thread.is_alive()


def write_textfile(path, registry):
    """Write the metrics of *registry* to *path* atomically (for
    node_exporter's textfile collector, which reads ``*.prom`` files):
    readable by others, as the collector may run as another user; the
    metrics hold no secret.  Raises OSError."""
    data = generate_latest(registry)
    directory = os.path.dirname(os.path.abspath(path))
    # Not ending in .prom: the collector never reads the temporary file.
    fd, temporary = tempfile.mkstemp(
        dir=directory, prefix='.' + os.path.basename(path) + '.',
        suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass  # gone already; the error that matters is raised
        raise
