"""One pass over a mail queue: claim, send, and dispose of each message.

`QueueProcessor.process` takes the oldest messages due (all of ``new/``,
and what in ``cur/`` has reached its retry time) and sends them over up to
``connections`` SMTP connections at once, each carrying up to
``max_messages``.  Each message is claimed first (`claim`), so processors
in any number of threads and processes can share a queue.  A message is
then removed (accepted: `MailSentEvent`); set aside as ``.rejected-X`` with
``.reason-X`` (refused for good, unreadable, or expired: `MailErrorEvent`);
moved to ``cur/`` for a retry with backoff (failed for now); or, when some
recipients refused it, retried for those refused for now only.  A relay
that cannot be reached or refuses the mailer's settings blames no message:
the pass stops and says so in its result.
"""
import collections
import heapq
import logging
import os
import threading
import time

from zope.sendmail.claim import REJECTED
from zope.sendmail.claim import RETRY
from zope.sendmail.claim import claim as claim_message
from zope.sendmail.classify import refused_text
from zope.sendmail.connection import SingleMessageConnection
from zope.sendmail.envelope import EnvelopeError
from zope.sendmail.envelope import format_envelope
from zope.sendmail.envelope import message_id_of
from zope.sendmail.envelope import parse_envelope
from zope.sendmail.events import MailErrorEvent
from zope.sendmail.events import MailSentEvent
from zope.sendmail.events import dispatch
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import PermanentDeliveryError
from zope.sendmail.maildir import queued_order
from zope.sendmail.retry import RetryPolicy
from zope.sendmail.retry import RetryState


log = logging.getLogger(__name__)


def _mtime(entry):
    try:
        return entry.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # sent by another processor meanwhile: order is moot


class PassResult:
    """What one pass did: counts of outcomes, the earliest time a deferred
    message falls due (``next_due``), whether more messages were due than
    the pass took (``more``), and ``error``: the exception that
    stopped the pass (relay unreachable, bad settings), or None;
    ``standby``: the pass stopped (or never began) as the queue's lease
    is another processor's."""

    def __init__(self):
        self.counts = collections.Counter()
        self.next_due = None
        self.error = None
        self.more = False
        self.standby = False

    def __repr__(self):
        counts = ', '.join(f'{k} {v}' for k, v in sorted(self.counts.items()))
        return f'<PassResult {counts or "nothing due"}' + (
            f'; stopped: {self.error}>' if self.error else '>')


class QueueProcessor:
    """Sends the messages of *maildir* (an `IMaildir`) through *mailer*.

    *retry* is a `RetryPolicy`; *notify* receives the events (by default
    the `events` dispatcher, outside this thread's transaction); *clock*
    tells the time.  *may_send*, when given, is asked before each message
    (`IProcessorLease.may_send`); *stale_after* is `claim`'s."""

    def __init__(self, mailer, maildir, connections=8, max_messages=100,
                 retry=None, notify=dispatch, clock=time.time,
                 may_send=None, stale_after=None):
        if connections < 1 or max_messages < 1:
            raise ValueError('connections and max_messages must be >= 1')
        self.mailer = mailer
        self.maildir = maildir
        self.connections = connections
        self.max_messages = max_messages
        self.retry = retry or RetryPolicy()
        self.notify = notify
        self.clock = clock
        self.may_send = may_send
        self.stale_after = stale_after
        self.stopping = threading.Event()

    def __repr__(self):
        return f'<QueueProcessor {self.maildir.path!r} via {self.mailer!r}>'

    def due(self, result, limit=None):
        """The paths of the (at most *limit*) oldest messages due now; only
        *limit* are held, and ``result.more`` says if more were due."""
        now = self.clock()
        count = 0

        def candidates():
            nonlocal count
            for sub in ('new', 'cur'):
                directory = os.path.join(self.maildir.path, sub)
                try:
                    entries = os.scandir(directory)
                except FileNotFoundError:
                    continue  # removed by an operator; nothing to send
                with entries:
                    for entry in entries:
                        if entry.name.startswith('.'):
                            continue
                        if sub == 'cur' and not self._is_due(entry, now,
                                                             result):
                            continue
                        count += 1
                        yield queued_order(entry.name,
                                           lambda: _mtime(entry)), entry.path

        if limit is None:
            chosen = sorted(candidates())
        else:
            chosen = heapq.nsmallest(limit, candidates())
        result.more = count > len(chosen)
        return [path for key, path in chosen]

    @staticmethod
    def _is_due(entry, now, result):
        try:
            due_at = entry.stat().st_mtime
        except FileNotFoundError:
            return False  # sent by another processor meanwhile
        if due_at <= now:
            return True
        if result.next_due is None or due_at < result.next_due:
            result.next_due = due_at
        return False

    def process(self):
        """Run one pass; return a `PassResult`.  Never raises for a
        message's sake; stops early when `stopping` is set."""
        result = PassResult()
        # What the connections carry; the rest waits for the next pass.
        todo = collections.deque(
            self.due(result, self.connections * self.max_messages))
        workers = min(self.connections, len(todo))
        if workers <= 1:
            self._work(todo, result)
        else:
            name = threading.current_thread().name
            threads = [threading.Thread(target=self._work, args=(todo, result),
                                        name=f'{name} connection {n}',
                                        daemon=True)
                       for n in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return result

    def _work(self, todo, result):
        """Send messages from *todo* over one connection at a time."""
        connection, sent = None, 0
        try:
            while not self.stopping.is_set() and result.error is None:
                if self.may_send is not None and not self.may_send():
                    result.standby = True  # the lease is lost: no more
                    return
                try:
                    path = todo.popleft()
                except IndexError:
                    return
                try:
                    claim = claim_message(path, stale_after=self.stale_after)
                    if claim is not None and not claim.due(self.clock()):
                        claim = claim.release()
                except Exception:  # a bug: the thread must live on
                    log.exception('unexpected error claiming %s', path)
                    claim = None
                if claim is None:
                    result.counts['busy'] += 1
                    continue
                try:
                    if connection is None:
                        connection = self._connect(result)
                        if connection is None:
                            return
                    outcome = self._deliver(claim, connection)
                except MailerConfigurationError as e:
                    # Reconnecting found the settings refused: no message
                    # is to blame, and the others would fail the same way.
                    self._stop_pass(result, e)
                    return
                except Exception as e:
                    # Stop no other message, nor come back every pass.
                    log.exception('unexpected error processing %s', path)
                    outcome = self._defer(claim, claim.name, claim.path,
                                          f'unexpected error: {e!r}')
                finally:
                    claim.release()
                result.counts[outcome] += 1
                sent += 1
                if sent >= self.max_messages:
                    connection.close()
                    connection, sent = None, 0
        finally:
            if connection is not None:
                connection.close()

    def _connect(self, result):
        connect = getattr(self.mailer, 'connect', None)
        if connect is None:
            return SingleMessageConnection(self.mailer)
        try:
            return connect()
        except MailDeliveryError as e:
            self._stop_pass(result, e)
            return None

    def _stop_pass(self, result, error):
        if result.error is None:
            result.error = error
            kind = 'configuration problem' if isinstance(
                error, MailerConfigurationError) else 'relay unavailable'
            log.error('queue %s: %s, pass stopped: %s', self.maildir.path,
                      kind, error)

    def _deliver(self, claim, connection):
        try:
            data = claim.read()
        except FileNotFoundError:
            return 'vanished'
        try:
            fromaddr, toaddrs, message = parse_envelope(data)
        except (EnvelopeError, ValueError) as e:  # never better next time
            return self._reject(claim, message_id_of(data) or claim.name,
                                f'unreadable queue file {claim.name}: {e}',
                                f'unreadable queue file {claim.path}')
        message_id = message_id_of(message) or claim.name
        what = (f'message {message_id} from {fromaddr} to'
                f' {", ".join(toaddrs)}')
        try:
            refused = connection.send(fromaddr, toaddrs, message) or {}
        except MailerConfigurationError:
            raise
        except PermanentDeliveryError as e:
            return self._reject(claim, message_id, str(e), what)
        except MailDeliveryError as e:
            refused, error = dict(e.recipients), e
        except Exception as e:
            log.exception('%s: unexpected error while sending', what)
            return self._defer(claim, message_id, what, e)
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
        lost = {a: r for a, r in refused.items() if r[0] >= 500}
        if lost:
            log.error('%s: %s', what, refused_text(lost))
            self.notify(MailErrorEvent(message_id, refused_text(lost)))
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
        return self._defer(claim, message_id, what, reason, rewrite)

    def _reject(self, claim, message_id, reason, what):
        log.error('%s set aside as %s: %s', what, REJECTED + claim.name,
                  reason)
        claim.move_aside(reason)
        self.notify(MailErrorEvent(message_id, reason))
        return 'rejected'

    def _defer(self, claim, message_id, what, error, rewrite=None):
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
                    state.attempts, next_attempt - now, error)
        return 'deferred'

    def _retry_state(self, claim):
        try:
            mtime = claim.stat().st_mtime
        except FileNotFoundError:
            mtime = self.clock()
        try:
            with open(claim.sidecar(RETRY), 'rb') as f:
                return RetryState.parse(f.read(), claim.name, mtime)
        except FileNotFoundError:
            return RetryState.fresh(claim.name, mtime)
