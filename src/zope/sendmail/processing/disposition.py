"""What becomes of one claimed queue message after an attempt to send it.

`Disposition.deliver` sends a claimed message (an `IClaimedMessage`) over a
connection and disposes of it by the outcome: completed (accepted:
`MailSentEvent`); set aside for good with a reason (refused for good,
unreadable, or expired: `MailErrorEvent`); deferred for a retry with
backoff (failed for now); or, when some recipients refused it, deferred
for those refused for now only.  The relay's conditions, which blame no
message (`MailerConfigurationError`, `RelayBusyError`, `ThrottledError`,
`QuotaExceededError`), leave the message as it was and go to the caller,
who decides (see `zope.sendmail.processing.processor`).  Times are the
store's.  The observer (an `IProcessingObserver`, through `Observing`) is
told each outcome once: sent (with the time on the wire), deferred,
rejected, or expired (not also rejected).
"""
import logging
import time

from zope.sendmail.display import printable
from zope.sendmail.display import shortlist
from zope.sendmail.events import MailErrorEvent
from zope.sendmail.events import MailSentEvent
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.interfaces import UnreadableMessageError
from zope.sendmail.processing.observer import UNKNOWN_RELAY
from zope.sendmail.processing.observer import Observing
from zope.sendmail.processing.observer import relay_name
from zope.sendmail.smtp.classify import is_permanent
from zope.sendmail.smtp.classify import refused_text


# Not the message's fault: the caller leaves it in the queue, untouched.
RELAY_CONDITIONS = (MailerConfigurationError, RelayBusyError,
                    QuotaExceededError)

log = logging.getLogger(__name__)


class Disposition:
    """Disposes of messages by the outcome of their attempts, with the
    *retry* policy (`RetryPolicy`), the *notify* callable receiving the
    events and the *clock* (the store's ``now``).  *observing* (an
    `Observing`) is told the outcomes; *relay* names the relay when a
    connection does not (see `relay_name`)."""

    def __init__(self, retry, notify, clock, observing=None,
                 relay=UNKNOWN_RELAY):
        self.retry = retry
        self.notify = notify
        self.clock = clock
        self.observing = observing or Observing(None, None)
        self.relay = relay

    def deliver(self, claimed, connection, patient=True):
        """Send the message *claimed* over *connection*; return the
        outcome (``'sent'``, ``'rejected'``, ``'deferred'``,
        ``'vanished'``).  A `ThrottledError` is raised while *patient*,
        else the message is deferred as for any temporary failure."""
        on_wire = []  # the seconds connection.send took, once it returned
        outcome = self._deliver(claimed, connection, patient, on_wire)
        if outcome == 'sent':
            self.observing.tell('sent', relay_name(connection, self.relay),
                                on_wire[0] if on_wire else 0.0)
        return outcome

    def _deliver(self, claimed, connection, patient, on_wire):
        try:
            fromaddr, toaddrs, message = claimed.read()
        except LookupError:
            return 'vanished'
        except UnreadableMessageError as e:  # never better next time
            return self._reject(claimed, claimed.name, str(e), e.what)
        message_id = claimed.message_id or claimed.name
        # Escaped for the log lines (a bidi override, a zero-width space).
        what = printable(f'message {message_id} from {fromaddr} to'
                         f' {shortlist(toaddrs)}')
        started = time.monotonic()
        try:
            refused = connection.send(fromaddr, toaddrs, message) or {}
        except RELAY_CONDITIONS:
            raise
        except ThrottledError as e:
            if patient:
                raise
            refused, error = dict(e.recipients), e
        except PermanentDeliveryError as e:
            return self._reject(claimed, message_id, str(e), what,
                                _full_text(e),
                                relay=relay_name(connection, self.relay))
        except MailDeliveryError as e:
            refused, error = dict(e.recipients), e
        except Exception as e:
            log.exception('%s: unexpected error while sending', what)
            return self.defer(claimed, message_id, what, e,
                              relay=relay_name(connection, self.relay))
        else:
            on_wire.append(time.monotonic() - started)
            error = None
            if not refused:
                claimed.complete()
                log.info('%s sent', what)
                self.notify(MailSentEvent(message_id))
                return 'sent'
        return self._partly(claimed, message_id, what, toaddrs, refused,
                            error, relay_name(connection, self.relay))

    def _partly(self, claimed, message_id, what, toaddrs, refused, error,
                relay):
        """Not every recipient got the message: report those refused for
        good, retry the others (all of them when *error* had none)."""
        lost = {a: r for a, r in refused.items() if is_permanent(*r)}
        if lost:
            log.error('%s: %s', what, refused_text(lost))
            # The event names every one (the application may need them).
            self.notify(MailErrorEvent(message_id,
                                       refused_text(lost, shown=None)))
        if error is None:
            log.info('%s sent to the other recipients', what)
            self.notify(MailSentEvent(message_id))
        if not refused:
            left, reason = list(toaddrs), error
        else:
            left = [a for a in toaddrs if a in refused and a not in lost]
            reason = refused_text({a: refused[a] for a in left})
        if not left:
            claimed.complete()
            return 'sent'
        # Those who got it must not get it again.
        recipients = left if len(left) < len(toaddrs) else None
        return self.defer(claimed, message_id, what, reason, recipients,
                          relay=relay)

    def _reject(self, claimed, message_id, reason, what, full=None,
                relay=None, expired=False):
        """Set the message aside for *reason*; the event says *full*, the
        reason naming every refused recipient, when there is one."""
        log.error('%s set aside as %s: %s', what,
                  printable(claimed.rejected_as), printable(reason))
        claimed.reject(reason)
        if expired:
            self.observing.tell('expired')
        else:
            self.observing.tell('rejected', relay or self.relay)
        self.notify(MailErrorEvent(message_id, full or reason))
        return 'rejected'

    def defer(self, claimed, message_id, what, error, recipients=None,
              relay=None):
        """Defer the message *claimed* for a retry with backoff (for
        *recipients* only, when given); set it aside once its lifetime is
        over.  Return the outcome.  *relay* names the relay that failed
        (this disposition's by default)."""
        now = self.clock()
        state = claimed.retry
        if self.retry.expired(state.queued, now):
            days = (now - state.queued) / 86400
            return self._reject(
                claimed, message_id, f'expired: not delivered after'
                f' {days:.1f} days and {state.attempts + 1} attempts;'
                f' last error: {error}', what, expired=True)
        next_attempt = state.failed(error, self.retry, now)
        claimed.defer(state, recipients)
        self.observing.tell('deferred', relay or self.relay)
        log.warning('%s deferred (attempt %d, next in %.3g s): %s', what,
                    state.attempts, next_attempt - now, printable(error))
        return 'deferred'


def _full_text(error):
    """The text of *error* naming every recipient it refused, or None."""
    if error.recipients:
        return 'all ' + refused_text(error.recipients, shown=None)
    return None
