"""The two mail deliveries: queued (into a queue store) and direct (over
SMTP).

``send()`` checks its input, turns the message into bytes with CRLF line
endings and a ``Message-Id``, and hands it to a batch joined to the current
transaction through a `MailDataManager`.  A batch gathers everything one
delivery sends in one transaction, so that the costly steps (a directory
sync, an SMTP connection) happen once per transaction, not once per message.
A queued delivery's batch writes through the queue's `IQueueStore`.
"""
import logging

import transaction
from zope.interface import implementer

from zope.sendmail import startup
from zope.sendmail.smtp.classify import refused_text
from zope.sendmail.datamanager import MailDataManager
from zope.sendmail.display import printable
from zope.sendmail.addresses import check_address
from zope.sendmail.addresses import check_recipients
from zope.sendmail.events import MailErrorEvent
from zope.sendmail.events import MailSentEvent
from zope.sendmail.events import dispatch
from zope.sendmail.smtp.single import open_connection
from zope.sendmail.interfaces import IDirectMailDelivery
from zope.sendmail.interfaces import IQueuedMailDelivery
from zope.sendmail.interfaces import MailDeliveryError
from zope.sendmail.stores import open_store
from zope.sendmail.stores import queue_name
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.message import make_message_id
from zope.sendmail.message import prepare_message
from zope.sendmail.processing.thread import \
    QueueProcessorThread  # noqa: F401 (7.3 API)
from zope.sendmail.display import shortlist

# The other names 7.3's delivery module imported, for code that imports
# them from here (its standard library modules are not: import those
# from the standard library).
from random import randrange  # noqa: F401
from socket import gethostname  # noqa: F401
from time import strftime  # noqa: F401

from transaction.interfaces import IDataManagerSavepoint  # noqa: F401
from transaction.interfaces import ISavepointDataManager  # noqa: F401


log = logging.getLogger(__name__)


class AbstractMailDelivery:
    """What both deliveries share: checking input, the message id, and
    finding this transaction's batch.

    7.3's ``newMessageId()`` and ``createDataManager()`` are kept: a
    subclass overriding ``newMessageId`` chooses the ids, and one
    overriding ``createDataManager`` (7.3's way to write a delivery)
    joins the data manager it returns for each message.
    """

    transaction_manager = None  # for 7.3 subclasses not calling __init__

    def __init__(self, transaction_manager=None):
        self.transaction_manager = transaction_manager

    def newMessageId(self):
        """A new, globally unique message id, without angle brackets."""
        return make_message_id()

    def createDataManager(self, fromaddr, toaddrs, message):
        """A `MailDataManager`, joined to no transaction yet, that sends
        *message* if the transaction it joins commits (7.3's API)."""
        message_id, message = prepare_message(message, self.newMessageId)
        data_manager = MailDataManager(
            batch=self.createBatch(),
            transaction_manager=self.transaction_manager)
        item = self.createItem(message_id, fromaddr, toaddrs, message)
        data_manager.add(item)
        return data_manager

    def send(self, fromaddr, toaddrs, message):
        check_address(fromaddr, 'sender')
        toaddrs = check_recipients(toaddrs)
        message_id, message = prepare_message(message, self.newMessageId)
        manager = self.transaction_manager or transaction.manager
        txn = manager.get()
        if type(self).createDataManager is not \
                AbstractMailDelivery.createDataManager:
            # A 7.3-style subclass: its own data manager for each message.
            txn.join(self.createDataManager(fromaddr, toaddrs, message))
            return message_id
        try:
            data_manager = txn.data(self)
        except KeyError:
            data_manager = None
        item = self.createItem(message_id, fromaddr, toaddrs, message)
        try:
            if data_manager is None:
                data_manager = MailDataManager(batch=self.createBatch(),
                                               transaction_manager=manager)
                txn.join(data_manager)
                txn.set_data(self, data_manager)
            data_manager.add(item)
        except BaseException:
            self.discardItem(item)
            raise
        return message_id


@implementer(IDirectMailDelivery)
class DirectMailDelivery(AbstractMailDelivery):
    """Relays through *mailer* while the transaction commits; see
    `IDirectMailDelivery`."""

    def __init__(self, mailer, transaction_manager=None):
        super().__init__(transaction_manager)
        self.mailer = mailer

    def __repr__(self):
        return f'<DirectMailDelivery via {self.mailer!r}>'

    def createItem(self, message_id, fromaddr, toaddrs, message):
        return (message_id, fromaddr, toaddrs, message)

    def discardItem(self, item):
        pass

    def createBatch(self):
        return DirectBatch(self.mailer)


class DirectBatch:
    """Sends one transaction's messages over one connection."""

    def __init__(self, mailer):
        self.mailer = mailer
        self.connection = None
        self.events = []  # notified once the transaction has committed

    def __repr__(self):
        return f'<DirectBatch via {self.mailer!r}>'

    def vote(self, items):
        # Connecting here lets an unreachable relay or bad credentials
        # abort the transaction while that is still possible.
        if not items:
            return  # all rolled back to a savepoint: nothing to connect for
        # The connection the last transaction left, where the mailer keeps
        # one (SMTPMailer.cached_connect); a mailer with only the IMailer
        # methods prepares the first message with its vote.
        self.connection = open_connection(self.mailer, cached=True,
                                          first=items[0][1:])

    def finish(self, items):
        try:
            for message_id, fromaddr, toaddrs, message in items:
                self._send_one(message_id, fromaddr, toaddrs, message)
        finally:
            self._close()

    def _send_one(self, message_id, fromaddr, toaddrs, message):
        sender = self.connection or self.mailer
        # Addresses may hold characters a terminal acts on (a bidi
        # override, a zero-width space): logged escaped, a few of them.
        shown_from, shown_to = printable(fromaddr), printable(
            shortlist(toaddrs))
        try:
            refused = sender.send(fromaddr, toaddrs, message) or {}
        except MailDeliveryError as e:
            # Expected failures of delivery: logged, never raised, since
            # the transaction has committed.  The log shows a few
            # recipients, the event names every one refused.
            log.error('message %s from %s to %s not delivered: %s',
                      message_id, shown_from, shown_to, printable(e))
            self.events.append(MailErrorEvent(message_id, (
                'all ' + refused_text(e.recipients, shown=None))
                if e.recipients else str(e)))
            return
        except Exception as e:
            log.exception('message %s from %s to %s not delivered:'
                          ' unexpected error', message_id, shown_from,
                          shown_to)
            self.events.append(
                MailErrorEvent(message_id, f'unexpected error: {e!r}'))
            return
        if refused:
            log.error('message %s: %s', message_id, refused_text(refused))
        log.info('message %s from %s to %s sent', message_id, shown_from,
                 printable(shortlist(a for a in toaddrs if a not in refused)))
        self.events.append(MailSentEvent(message_id))
        if refused:
            self.events.append(MailErrorEvent(
                message_id, refused_text(refused, shown=None)))

    def after_commit(self, committed):
        """Hand the events to the dispatcher once the commit is complete
        (never while other data managers are still finishing it)."""
        events, self.events = self.events, []
        if committed:
            for event in events:
                dispatch(event)
        elif events:
            # Mail went out, but the transaction failed after it: its
            # subscribers would act on a commit that did not happen.
            log.warning('transaction failed after sending message(s) %s:'
                        ' their events are not notified',
                        ', '.join(sorted({e.messageId for e in events})))

    def _close(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()

    def discard(self, items):
        self._close()


@implementer(IQueuedMailDelivery)
class QueuedMailDelivery(AbstractMailDelivery):
    """Writes messages into the queue *queuePath*: a Maildir directory,
    or a PostgreSQL URL (``postgresql://...``, see `zope.sendmail.stores`);
    see `IQueuedMailDelivery`.

    With *durable* (the default) a committed message survives a crash or a
    power loss.  ``durable=False`` skips the syncs: faster, but a crash
    shortly after a commit may lose or truncate queued mail.
    *maildir_factory* (an `IMaildirFactory`) opens the queue's Maildir,
    with *shared_group* when true (a queue its group may write to).
    """

    def __init__(self, queuePath, transaction_manager=None, durable=True,
                 maildir_factory=Maildir, shared_group=False):
        super().__init__(transaction_manager)
        self._queuePath = queuePath
        self._durable = durable
        self.maildir_factory = maildir_factory
        self.shared_group = shared_group
        self._store = None

    queuePath = property(lambda self: self._queuePath)

    def __repr__(self):
        # Never the URL's password.
        return f'<QueuedMailDelivery {queue_name(self.queuePath)!r}>'

    @property
    def store(self):
        """The queue's `IQueueStore`, opened (the queue made, if missing)
        when first used."""
        if self._store is None:
            self._store = open_store(
                self.queuePath, create=True, shared_group=self.shared_group,
                maildir_factory=self.maildir_factory, durable=self.durable)
        return self._store

    @property
    def maildir(self):
        """The queue's Maildir folder, as *maildir_factory* made it; None
        for a queue that is no directory (a PostgreSQL URL)."""
        return getattr(self.store, 'maildir', None)

    @property
    def durable(self):
        return self._durable

    @durable.setter
    def durable(self, durable):
        self._durable = durable
        if self._store is not None:
            self._store.durable = durable

    def createItem(self, message_id, fromaddr, toaddrs, message):
        return self.store.add(message_id, fromaddr, toaddrs, message)

    def discardItem(self, item):
        self.store.discard([item])

    def createBatch(self):
        return QueuedBatch(self.store)


class QueuedBatch:
    """Commits one transaction's messages to the queue's store: durable at
    the vote, visible to processors (and waking them) at the finish."""

    def __init__(self, store):
        self.store = store

    def __repr__(self):
        return f'<QueuedBatch {self.store.name!r}>'

    def vote(self, items):
        self.store.vote(items)

    def finish(self, items):
        self.store.finish(items)
        if items:
            startup.committed(self.store)

    def discard(self, items):
        self.store.discard(items)
