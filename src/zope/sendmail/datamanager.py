"""The transaction data manager that holds back mail until commit.

One `MailDataManager` joins a transaction for one delivery and collects
every message that delivery is given in that transaction.  The work is done
by a *batch* (queued or direct, see `zope.sendmail.delivery`) at the points
of ``transaction``'s two-phase commit where it is safe::

    send() ... send()          batch.add(item) for each message
    tpc_begin, commit          nothing: the messages are already prepared
    tpc_vote                   batch.vote(items): may raise, aborting all
    tpc_finish                 batch.finish(items): must not raise
    after the commit           batch.after_commit(committed), if it has one
    abort / tpc_abort          batch.discard(items)
    savepoint rollback         batch.discard(the items added after it)

``after_commit`` runs as an after-commit hook of the transaction, once every
data manager has finished (``txn.status`` is then ``Committed``), with
*committed* false when the commit failed after all.

The state is explicit; a call out of order (a hand-driven protocol gone
wrong) raises `DataManagerStateError` naming the state and the call.

7.3's signature, ``MailDataManager(callable, args=(), vote=None,
onAbort=None)``, builds one whose batch is `CallBatch`: ``vote(*args)`` at
the vote, ``callable(*args)`` after the commit, ``onAbort()`` on abort.
"""
import logging

import transaction
from transaction.interfaces import IDataManagerSavepoint
from transaction.interfaces import ISavepointDataManager
from zope.interface import implementer


log = logging.getLogger(__name__)

ACTIVE = 'active'          # joined, collecting messages
BEGUN = 'tpc_begin'        # two-phase commit started
COMMITTED = 'committed'    # commit() called, vote pending
VOTED = 'voted'            # batch.vote() succeeded
FINISHED = 'finished'      # batch.finish() done: the mail is out of our hands
ABORTED = 'aborted'        # everything discarded


class DataManagerStateError(RuntimeError):
    """A two-phase-commit method was called in the wrong state."""


@implementer(ISavepointDataManager)
class MailDataManager:
    """Joins *transaction_manager*'s current transaction (by default
    ``transaction.manager``'s) for *batch*, which provides
    ``vote(items)``, ``finish(items)`` and ``discard(items)``.

    Built with 7.3's positional arguments instead, it has 7.3's attributes
    ``callable``, ``args``, ``vote`` and ``onAbort`` (see `CallBatch`).
    """

    def __init__(self, callable=None, args=(), vote=None, onAbort=None, *,
                 batch=None, transaction_manager=None):
        if (callable is None) == (batch is None):
            raise TypeError('MailDataManager needs a callable (7.3) or a'
                            ' batch=, not both')
        self.callable, self.args = callable, tuple(args)
        self.vote, self.onAbort = vote, onAbort
        self.transaction_manager = transaction_manager or transaction.manager
        self.items = []
        self.state = ACTIVE
        if batch is None:
            batch = CallBatch(self)
            self.items.append(self.args)  # the one "message"
        self.batch = batch

    def __repr__(self):
        return (f'<MailDataManager {self.state} with {len(self.items)}'
                f' message(s) for {self.batch!r}>')

    def _require(self, call, *states):
        if self.state not in states:
            raise DataManagerStateError(
                f'{call}() called in state {self.state!r}; it is allowed'
                f' only in state {" or ".join(map(repr, states))}')

    def add(self, item):
        """Take one more message; called by the delivery's ``send``."""
        self._require('add', ACTIVE)
        self.items.append(item)

    def sortKey(self):
        # '~' sorts after the keys of ZODB storages and most other data
        # managers, so a relay is contacted only once they have voted.
        return f'~zope.sendmail:{id(self):x}'

    def tpc_begin(self, transaction):
        self._require('tpc_begin', ACTIVE)
        self.state = BEGUN

    def commit(self, transaction):
        self._require('commit', BEGUN)
        self.state = COMMITTED

    def tpc_vote(self, transaction):
        self._require('tpc_vote', COMMITTED)
        self.batch.vote(self.items)
        self.state = VOTED
        self._hooked = False
        add_hook = getattr(transaction, 'addAfterCommitHook', None)
        if add_hook is not None and hasattr(self.batch, 'after_commit'):
            add_hook(self._after_commit)
            self._hooked = True

    def _after_commit(self, committed):
        try:
            self.batch.after_commit(committed)
        except Exception:
            # The commit is over; the transaction package would only log
            # this, less clearly.
            log.exception('unexpected error after commit in %r', self)

    def tpc_finish(self, transaction):
        self._require('tpc_finish', VOTED)
        self.state = FINISHED
        try:
            self.batch.finish(self.items)
        except Exception:
            # The transaction is committed whatever happens here: raising
            # would make the transaction package report a failed commit
            # after other data managers finished.  The batch logs each
            # message's fate; this is for its own bugs.
            log.exception('unexpected error after commit in %r', self)
        if not self._hooked and hasattr(self.batch, 'after_commit'):
            # Driven by hand, without a transaction to hook into.
            self._after_commit(True)

    def abort(self, transaction):
        # Called when the transaction aborts before or during the
        # two-phase commit, but never after our vote succeeded -- except
        # after another data manager's tpc_finish failed after ours (see
        # _after_finish).
        if self._after_finish():
            return
        self._require('abort', ACTIVE, BEGUN, COMMITTED, ABORTED)
        self._discard()

    def tpc_abort(self, transaction):
        if self._after_finish():
            return
        self._require('tpc_abort', ACTIVE, BEGUN, COMMITTED, VOTED, ABORTED)
        self._discard()

    def _after_finish(self):
        # When a data manager's tpc_finish fails after ours, the transaction
        # package calls tpc_abort, and later abort, on every data manager:
        # our mail is out by then, and there is nothing left to undo.
        return self.state == FINISHED

    def _discard(self):
        items, self.items = self.items, []
        self.state = ABORTED
        if items:
            self.batch.discard(items)

    def savepoint(self):
        self._require('savepoint', ACTIVE)
        return MailSavepoint(self, len(self.items))

    def _rollback(self, size):
        self._require('rollback', ACTIVE)
        dropped, self.items = self.items[size:], self.items[:size]
        if dropped:
            self.batch.discard(dropped)


@implementer(IDataManagerSavepoint)
class MailSavepoint:
    """Remembers how many messages there were; rolling back drops the
    messages sent after it."""

    def __init__(self, data_manager, size):
        self.data_manager = data_manager
        self.size = size

    def rollback(self):
        self.data_manager._rollback(self.size)


class CallBatch:
    """The batch of a `MailDataManager` built with 7.3's arguments; reads
    them from the data manager when called, as 7.3's code set them."""

    def __init__(self, data_manager):
        self.data_manager = data_manager

    def __repr__(self):
        return f'<CallBatch {self.data_manager.callable!r}>'

    def vote(self, items):
        vote = self.data_manager.vote
        if vote is not None:  # 7.3: None means nothing to check
            vote(*self.data_manager.args)

    def finish(self, items):
        self.data_manager.callable(*self.data_manager.args)

    def discard(self, items):
        on_abort = self.data_manager.onAbort
        if on_abort is not None:
            on_abort()
