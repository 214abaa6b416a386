"""What becomes of one claimed queue message after an attempt to send it.

`Disposition.deliver` sends a claimed message over a connection and
disposes of it by the outcome: removed (accepted: `MailSentEvent`); set
aside as ``.rejected-X`` with ``.reason-X`` (refused for good, unreadable,
or expired: `MailErrorEvent`); moved to ``cur/`` for a retry with backoff
(failed for now); or, when some recipients refused it, retried for those
refused for now only.  The relay's conditions, which blame no message
(`MailerConfigurationError`, `RelayBusyError`, `ThrottledError`,
`QuotaExceededError`), leave the message as it was and go to the caller,
who decides (see `zope.sendmail.processing.processor`).
"""
import logging

from zope.sendmail.stores.maildir.names import REJECTED
from zope.sendmail.stores.maildir.names import RETRY
from zope.sendmail.smtp.classify import is_permanent
from zope.sendmail.smtp.classify import refused_text
from zope.sendmail.display import printable
from zope.sendmail.stores.maildir.envelope import EnvelopeError
from zope.sendmail.stores.maildir.envelope import format_envelope
from zope.sendmail.message import message_id_of
from zope.sendmail.stores.maildir.envelope import split_envelope
from zope.sendmail.events import MailErrorEvent
from zope.sendmail.events import MailSentEvent
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.processing.retry import RetryState
from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import read_regular
from zope.sendmail.display import shortlist


# Not the message's fault: the caller leaves it in the queue, untouched.
RELAY_CONDITIONS = (MailerConfigurationError, RelayBusyError,
                    QuotaExceededError)

log = logging.getLogger(__name__)

RETRY_SIZE = 64 * 1024  # more than any .retry-X this package writes


class Disposition:
    """Disposes of messages by the outcome of their attempts, with the
    *retry* policy (`RetryPolicy`), the *notify* callable receiving the
    events and the *clock* (``time.time``)."""

    def __init__(self, retry, notify, clock):
        self.retry = retry
        self.notify = notify
        self.clock = clock

    def deliver(self, claim, connection, patient=True):
        """Send the message of *claim* over *connection*; return the
        outcome (``'sent'``, ``'rejected'``, ``'deferred'``,
        ``'vanished'``).  A `ThrottledError` is raised while *patient*,
        else the message is deferred as for any temporary failure."""
        try:
            data = claim.read()
        except FileNotFoundError:
            return 'vanished'
        try:
            fromaddr, toaddrs, start = split_envelope(data)
        except (EnvelopeError, ValueError) as e:  # never better next time
            # Named by its file: what it holds is not to be trusted, nor
            # quoted (EnvelopeError says what is wrong, not what is there).
            return self._reject(
                claim, claim.name,
                f'unreadable queue file {printable(claim.name)}: {e}',
                f'unreadable queue file {printable(claim.path)}')
        # A view, not a copy: a big message is in memory once.
        message = memoryview(data)[start:]
        message_id = message_id_of(data, start) or claim.name
        # Escaped for the log lines (a bidi override, a zero-width space).
        what = printable(f'message {message_id} from {fromaddr} to'
                         f' {shortlist(toaddrs)}')
        try:
            refused = connection.send(fromaddr, toaddrs, message) or {}
        except RELAY_CONDITIONS:
            raise
        except ThrottledError as e:
            if patient:
                raise
            refused, error = dict(e.recipients), e
        except PermanentDeliveryError as e:
            return self._reject(claim, message_id, str(e), what,
                                _full_text(e))
        except MailDeliveryError as e:
            refused, error = dict(e.recipients), e
        except Exception as e:
            log.exception('%s: unexpected error while sending', what)
            return self.defer(claim, message_id, what, e)
        else:
            error = None
            if not refused:
                claim.complete()
                log.info('%s sent', what)
                self.notify(MailSentEvent(message_id))
                return 'sent'
        return self._partly(claim, message_id, what, fromaddr, toaddrs,
                            message, refused, error)

    def _partly(self, claim, message_id, what, fromaddr, toaddrs, message,
                refused, error):
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
            claim.complete()
            return 'sent'
        rewrite = None
        if len(left) < len(toaddrs):
            # Those who got it must not get it again.
            rewrite = format_envelope(fromaddr, left) + message
        return self.defer(claim, message_id, what, reason, rewrite)

    def _reject(self, claim, message_id, reason, what, full=None):
        """Set the message aside for *reason*; the event says *full*, the
        reason naming every refused recipient, when there is one."""
        log.error('%s set aside as %s: %s', what,
                  printable(REJECTED + claim.name), printable(reason))
        claim.move_aside(reason)
        self.notify(MailErrorEvent(message_id, full or reason))
        return 'rejected'

    def defer(self, claim, message_id, what, error, rewrite=None):
        """Defer the message of *claim* for a retry with backoff (set it
        aside once its lifetime is over); the outcome."""
        now = self.clock()
        state = self._retry_state(claim)
        if self.retry.expired(state.queued, now):
            days = (now - state.queued) / 86400
            return self._reject(
                claim, message_id, f'expired: not delivered after'
                f' {days:.1f} days and {state.attempts + 1} attempts;'
                f' last error: {error}', what)
        next_attempt = state.failed(error, self.retry, now)
        claim.defer(next_attempt, state.format(), rewrite)
        log.warning('%s deferred (attempt %d, next in %.3g s): %s', what,
                    state.attempts, next_attempt - now, printable(error))
        return 'deferred'

    def _retry_state(self, claim):
        try:
            mtime = claim.stat().st_mtime
        except FileNotFoundError:
            mtime = self.clock()
        try:
            data = read_regular(claim.sidecar(RETRY), RETRY_SIZE)
            return RetryState.parse(data, claim.name, mtime)
        except FileNotFoundError:
            return RetryState.fresh(claim.name, mtime)
        except NotRegularFileError as e:
            # Bookkeeping only: start afresh; deferring replaces it.
            log.warning('%s: %s; its attempts are counted afresh',
                        claim.path, e)
            return RetryState.fresh(claim.name, mtime)


def _full_text(error):
    """The text of *error* naming every recipient it refused, or None."""
    if error.recipients:
        return 'all ' + refused_text(error.recipients, shown=None)
    return None
