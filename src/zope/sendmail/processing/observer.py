"""What a queue processor tells its observer, and how a relay is named.

`NullObserver` is the `IProcessingObserver` of a processor given none: it
is told everything and does nothing.  `Observing` is how the processor and
its disposition tell an observer: every call guarded, so that a broken
observer (a bug in someone's metrics) is logged and never costs a message
nor a connection thread.  `relay_name` names the relay a connection talks
to (``host:port``, never a password) for log lines and metric labels.
"""
import functools
import logging

from zope.interface import implementer

from zope.sendmail.display import printable
from zope.sendmail.interfaces import IObserving
from zope.sendmail.interfaces import IProcessingObserver


log = logging.getLogger(__name__)

#: What a relay is called when nothing names it.
UNKNOWN_RELAY = 'unknown'

# A relay's name is a metric label: bounded, whatever a mailer's
# hostname holds.
_MAX_NAME = 200


@implementer(IProcessingObserver)
class NullObserver:
    """Is told what a processor does, and does nothing with it."""

    def sent(self, queue, relay, seconds):
        pass

    def deferred(self, queue, relay):
        pass

    def rejected(self, queue, relay):
        pass

    def expired(self, queue):
        pass

    def throttled(self, queue, relay):
        pass

    def connection_refused(self, queue, relay):
        pass


def mailer_relay(mailer):
    """The relay *mailer* talks to, as ``host:port``: its ``relay``
    attribute when it has one (a mailer of several relays names them),
    else its ``hostname`` and ``port`` (a 7.3-style `SMTPMailer`), else
    `UNKNOWN_RELAY`."""
    relay = getattr(mailer, 'relay', None)
    if isinstance(relay, str) and relay:
        return _bounded(relay)
    hostname = getattr(mailer, 'hostname', None)
    if not isinstance(hostname, str) or not hostname:
        return UNKNOWN_RELAY
    port = getattr(mailer, 'port', None)
    return _bounded(hostname if port is None else f'{hostname}:{port}')


def relay_name(connection, default=UNKNOWN_RELAY):
    """The relay *connection* (an `IMailerConnection`) talks to: its
    ``relay`` attribute (``host:port``), else *default* (what
    `mailer_relay` said of its mailer).  Read after each message: a
    connection of several relays names the one it used last."""
    relay = getattr(connection, 'relay', None)
    if isinstance(relay, str) and relay:
        return _bounded(relay)
    return default


@functools.lru_cache(maxsize=64)
def _bounded(text):
    # Escaped and cut: a label, a log line, never a screenful.  Asked for
    # each message, of the few names of a processor's relays: remembered.
    text = printable(text)
    return text if len(text) <= _MAX_NAME else text[:_MAX_NAME] + '...'


@implementer(IObserving)
class Observing:
    """Tells *observer* (an `IProcessingObserver`, or None) about the queue
    named *queue*, from any thread: each ``tell_*`` method calls the
    observer's method of that name and logs, never raises, whatever the
    observer raises."""

    def __init__(self, observer, queue):
        self.observer = observer if observer is not None else NullObserver()
        self.queue = queue
        self._broken = set()  # the observer's methods that raised, logged

    def tell(self, method, *args):
        try:
            getattr(self.observer, method)(self.queue, *args)
        except Exception:
            # Counting is never worth a message, nor a connection thread:
            # logged (with its traceback once per method: it is a bug).
            if method in self._broken:
                log.debug('observer %r failed again in %s', self.observer,
                          method, exc_info=True)
            else:
                self._broken.add(method)
                log.exception('observer %r failed in %s (queue %s)',
                              self.observer, method, self.queue)
