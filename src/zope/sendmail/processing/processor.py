"""One pass over a mail queue: claim, send, and dispose of each message.

`QueueProcessor.process` takes the oldest messages due (all of ``new/``,
and what in ``cur/`` has reached its retry time), oldest first, and sends
them over one SMTP connection, or more as its `RelaySchedule` allows (up
to ``connections``, while the backlog justifies them and the relay takes
them), each carrying up to ``max_messages``, at the schedule's pace.  Each
message is claimed first (`claim`), so processors in any number of threads
and processes can share a queue; `Disposition` then disposes of it by the
outcome.  No message is blamed for the relay's conditions: a connection
turned away lowers the concurrency (the pass goes on while one connection
works); "too fast" slows the pace and puts the message back at the front
of the pass's to-do list, to be sent after the pause and at most a few
times in a pass (then a later pass sends it; deferred as a temporary
failure only once throttled for ``throttle_patience`` seconds); an
unreachable relay, refused settings or a used-up quota stop the pass,
which says so in its result.  A reply about one recipient (greylisting,
a full mailbox) is that recipient's: it is retried with backoff, and the
pass goes on.  The relay's recipient cap, once learnt, is kept in the
schedule and given to every connection.
"""
import heapq
import logging
import os
import threading
import time

from zope.sendmail.stores.maildir.claim import claim as claim_message
from zope.sendmail.smtp.single import SingleMessageConnection
from zope.sendmail.processing.disposition import RELAY_CONDITIONS
from zope.sendmail.processing.disposition import Disposition
from zope.sendmail.events import dispatch
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.stores.maildir.names import queued_order
from zope.sendmail.stores.maildir.notices import Notices
from zope.sendmail.stores.maildir.notices import skip_odd
from zope.sendmail.processing.passes import Pass
from zope.sendmail.processing.passes import PassResult
from zope.sendmail.processing.passes import Throttles
from zope.sendmail.interfaces import QuotaExceededError
from zope.sendmail.interfaces import RelayBusyError
from zope.sendmail.interfaces import ThrottledError
from zope.sendmail.processing.retry import RetryPolicy
from zope.sendmail.processing.scheduling import RelaySchedule


log = logging.getLogger(__name__)


def _mtime(entry):
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return 0.0  # sent by another processor meanwhile: order is moot


class QueueProcessor:
    """Sends the messages of *maildir* (an `IMaildir`) through *mailer*.

    *connections* and *max_rate* bound the connections and the pace (see
    `RelaySchedule`; or pass a *schedule*, an `IRelaySchedule`, kept
    across passes); *max_messages* the messages per connection.  *retry*
    is a `RetryPolicy`; *notify* receives the events (by default the
    `events` dispatcher, outside this thread's transaction); *clock* tells
    the time.  *may_send*, when given, is asked before each message
    (`IProcessorLease.may_send`); *stale_after* is `claim`'s."""

    def __init__(self, mailer, maildir, connections=8, max_messages=100,
                 retry=None, notify=dispatch, clock=time.time,
                 may_send=None, stale_after=None, max_rate=None,
                 schedule=None):
        if connections < 1 or max_messages < 1:
            raise ValueError('connections and max_messages must be >= 1')
        self.mailer = mailer
        self.maildir = maildir
        self.connections = connections
        self.max_messages = max_messages
        self.schedule = schedule or RelaySchedule(connections, max_rate)
        self.disposition = Disposition(retry or RetryPolicy(), notify,
                                       clock)
        self.clock = clock
        self.may_send = may_send
        self.stale_after = stale_after
        self.notices = Notices(log)  # what was said of odd entries
        self.stopping = threading.Event()
        self.throttles = Throttles()

    # The retry policy and the event sink live in the disposition.
    retry = property(lambda self: self.disposition.retry)

    @property
    def notify(self):
        return self.disposition.notify

    @notify.setter
    def notify(self, notify):
        self.disposition.notify = notify

    def __repr__(self):
        return f'<QueueProcessor {self.maildir.path!r} via {self.mailer!r}>'

    def due(self, result, limit=None):
        """The paths of the (at most *limit*) oldest messages due now; only
        *limit* are held, and ``result.more`` says if more were due."""
        now = self.clock()
        count = 0
        present = set()

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
                        present.add(entry.path)
                        if skip_odd(self.notices, self.maildir.path, sub,
                                    entry):
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
        self.notices.retain(present)
        return [path for key, path in chosen]

    @staticmethod
    def _is_due(entry, now, result):
        try:
            due_at = entry.stat(follow_symlinks=False).st_mtime
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
        self.throttles.prune()
        # What the connections carry; the rest waits for the next pass.
        todo = self.due(result, self.connections * self.max_messages)
        if todo and self.schedule.may_open(len(todo)):
            run = Pass(self, todo, result)
            try:
                self._work(run)  # the first connection, in this thread
            finally:
                run.join()
        return result

    def _work(self, run):
        """Open a connection (booked with the schedule) and send messages
        from *run*'s to-do list over it, up to ``max_messages``."""
        connection = self._open(run)
        if connection is None:
            return
        sent = 0
        try:
            while sent < self.max_messages and run.going():
                if self.may_send is not None and not self.may_send():
                    run.result.standby = True  # the lease is lost: no more
                    break
                run.grow()
                # The message first: a connection with nothing left to
                # send takes no turn in the pace (and holds up no pass).
                path = run.take()
                if path is None:
                    break
                if not (self._wait_turn() and run.wait_throttled(path)):
                    run.put_back(path)  # stopping: it was not tried
                    break
                outcome = self._attempt(run, path, connection)
                if outcome is None:
                    break  # the connection is lost; the message waits
                sent += outcome != 'busy'
        finally:
            connection.close()
            self.schedule.closed()
            run.closed()
        run.grow()  # a fresh connection for what is left, if it pays

    def _wait_turn(self):
        """Wait for this connection's turn in the schedule's pace; False
        when the processor is stopping."""
        delay = self.schedule.pause()
        while delay:
            if self.stopping.wait(delay):
                return False
            delay = self.schedule.pause()
        return True

    def _open(self, run):
        connect = getattr(self.mailer, 'connect', None)
        try:
            connection = SingleMessageConnection(self.mailer) \
                if connect is None else connect()
        except RelayBusyError as e:
            self.schedule.refused()
            if run.opened_alone():
                self._stop_pass(run.result, e)  # not even one connection
            else:
                run.result.counts['turned away'] += 1
                log.info('queue %s: a connection more than %s takes: %s',
                         self.maildir.path, self.mailer, e)
            return None
        except MailDeliveryError as e:
            self.schedule.failed()
            if run.opened_alone():
                self._stop_pass(run.result, e)
            else:
                log.warning('queue %s: another connection failed: %s',
                            self.maildir.path, e)
            return None
        except Exception as e:
            # A bug, not the relay nor any message: stop the pass, so that
            # the thread backs off instead of trying again at once.
            self.schedule.failed()
            log.exception('queue %s: unexpected error connecting through'
                          ' %r', self.maildir.path, self.mailer)
            self._stop_pass(run.result, e)
            return None
        except BaseException:
            self.schedule.failed()
            raise
        self.schedule.opened()
        run.opened()
        if self.schedule.max_recipients is not None and \
                hasattr(connection, 'max_recipients'):
            connection.max_recipients = self.schedule.max_recipients
        return connection

    def _attempt(self, run, path, connection):
        """Claim and send the message at *path*; its outcome, or None when
        the connection was lost."""
        try:
            claim = claim_message(path, self.stale_after, self.notices)
            if claim is not None and not claim.due(self.clock()):
                claim = claim.release()
        except Exception:  # a bug: the thread must live on
            log.exception('unexpected error claiming %s', path)
            claim = None
        if claim is None:
            run.result.counts['busy'] += 1
            return 'busy'
        try:
            outcome = self.disposition.deliver(claim, connection,
                                               patient=run.patient(path))
        except ThrottledError as e:
            # Too fast: the same message again, later, slower; no attempt
            # is counted against it (unless it waited too long: patient).
            # The pace first, so that no connection sends it before that.
            run.throttled(path, e, self.schedule.throttled())
            return 'throttled'
        except RelayBusyError as e:
            # Reconnecting (the relay had closed the connection) was
            # turned away: the message is not to blame.
            run.put_back(path)
            log.info('queue %s: %s', self.maildir.path, e)
            return None
        except RELAY_CONDITIONS as e:
            # Refused settings, a used-up quota: no message is to blame,
            # and the others would fail the same way.
            run.put_back(path)
            self._stop_pass(run.result, e)
            return None
        except Exception as e:
            # Stop no other message, nor come back every pass.
            log.exception('unexpected error processing %s', path)
            outcome = self.disposition.defer(claim, claim.name, claim.path,
                                             f'unexpected error: {e!r}')
        finally:
            claim.release()
            self.schedule.capped(getattr(connection, 'max_recipients', None))
        self.throttles.forget(path)
        run.result.counts[outcome] += 1
        run.progress()
        self.schedule.sent()
        return outcome

    def _stop_pass(self, result, error):
        if result.error is None:
            result.error = error
            kind = 'configuration problem' if isinstance(
                error, MailerConfigurationError) else 'quota used up' \
                if isinstance(error, QuotaExceededError) else \
                'relay throttling' if isinstance(error, ThrottledError) \
                else 'relay unavailable' if isinstance(
                    error, MailDeliveryError) else 'unexpected error'
            log.error('queue %s: %s, pass stopped: %s', self.maildir.path,
                      kind, error)
