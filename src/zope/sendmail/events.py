"""The mail events, and how they reach subscribers outside any commit.

`MailSentEvent` and `MailErrorEvent` are notified through ``zope.event``.
A subscriber may want to record the outcome in a database, so each event is
notified in a fresh transaction of its own, which the subscriber may commit,
and never from inside the commit of the transaction that sent the mail (a
subscriber calling ``transaction.commit()`` there would break that commit).

Direct delivery learns the outcomes during ``tpc_finish`` and hands them to
the `EventDispatcher` from an after-commit hook of the sending transaction,
so that no subscriber runs before that commit is complete (``txn.status``
is ``Committed``), and none for a commit that failed.  The dispatcher is a
thread that notifies them in order; a queue processor hands it its events
too.  What is pending at interpreter exit is delivered then (for at most
`EXIT_TIMEOUT` seconds), so a short script loses none.  An exception in a
subscriber is logged, and neither the sender nor the processor ever sees it.
"""
import atexit
import logging
import threading

import transaction
import zope.event
from zope.interface import implementer

from zope.sendmail.interfaces import IMailErrorEvent
from zope.sendmail.interfaces import IMailSentEvent


log = logging.getLogger(__name__)

EXIT_TIMEOUT = 5.0


@implementer(IMailSentEvent)
class MailSentEvent:
    """The relay accepted the message *messageId*."""

    def __init__(self, messageId):
        self.messageId = messageId

    def __repr__(self):
        return f'<MailSentEvent {self.messageId}>'


@implementer(IMailErrorEvent)
class MailErrorEvent:
    """The message *messageId* was not delivered: *errorMessage* says why."""

    def __init__(self, messageId, errorMessage):
        self.messageId = messageId
        self.errorMessage = errorMessage

    def __repr__(self):
        return f'<MailErrorEvent {self.messageId}: {self.errorMessage}>'


def deliver(event, transaction_manager=None):
    """Notify *event* in a fresh transaction; log what a subscriber raises.

    Whatever a subscriber leaves uncommitted is aborted.  Must be called
    outside any commit, in a thread whose current transaction may be
    discarded.
    """
    manager = transaction_manager or transaction.manager
    try:
        manager.begin()
        zope.event.notify(event)
    except Exception:
        # A subscriber's bug must not cost the sender or the queue
        # processor anything; the log is where it can be found.
        log.exception('subscriber failed on %r', event)
    finally:
        try:
            manager.abort()
        except Exception:
            log.exception('cannot abort after notifying %r', event)


class EventDispatcher:
    """A thread that delivers the events handed to `dispatch`, in order.

    It starts when the first event arrives.  `flush` waits until everything
    dispatched so far was delivered; `stop` delivers what is pending, then
    ends the thread.
    """

    def __init__(self, name='zope.sendmail events'):
        self.name = name
        self._events = []
        self._condition = threading.Condition()
        self._pending = 0
        self._thread = None

    def dispatch(self, event):
        if not zope.event.subscribers:
            return  # nobody listens: no thread, no transaction
        with self._condition:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name=self.name, daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    # Python 3.12+ starts no thread at interpreter exit,
                    # when a processor stopping may still report: deliver
                    # it here (outside any commit) rather than lose it.
                    thread = None
                self._thread = thread
            if self._thread is not None:
                self._events.append(event)
                self._pending += 1
                self._condition.notify_all()
                return
        deliver(event)

    def _run(self):
        me = threading.current_thread()
        while True:
            with self._condition:
                while not self._events and self._thread is me:
                    self._condition.wait()
                if not self._events:
                    return
                event = self._events.pop(0)
            try:
                # This thread's own transaction: never the sender's.
                deliver(event)
            finally:
                with self._condition:
                    self._pending -= 1
                    self._condition.notify_all()

    def flush(self, timeout=10):
        """Wait at most *timeout* seconds for the dispatched events to be
        delivered; return whether they were."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending,
                                            timeout)

    def stop(self, timeout=10):
        """Deliver what is pending, then end the thread and join it;
        return whether that was done within *timeout* seconds."""
        with self._condition:
            thread, self._thread = self._thread, None
            self._condition.notify_all()
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop_at_exit(self, timeout=EXIT_TIMEOUT):
        """Called at interpreter exit: deliver what is pending, but never
        hold up the exit for more than *timeout* seconds."""
        if not self.stop(timeout):
            with self._condition:
                left = self._pending
            log.warning('%d mail event(s) not delivered: the subscribers'
                        ' took more than %s s at exit', left, timeout)


dispatcher = EventDispatcher()
dispatch = dispatcher.dispatch
# Daemon threads still run while atexit functions do.
atexit.register(dispatcher.stop_at_exit)

try:
    from zope.testing.cleanup import addCleanUp
except ImportError:  # zope.testing is for tests only
    pass
else:
    # Tests that clean up (zope.testing.cleanup.cleanUp) leave no thread.
    addCleanUp(dispatcher.stop)
