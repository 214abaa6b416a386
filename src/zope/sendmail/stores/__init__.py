"""Where queued mail waits: the queue stores, behind `IQueueStore`.

Deliveries, processors and the operators' commands talk to a store, never
to its files.  `open_store` is the one place that chooses the store from
what the user gives: a path is a Maildir directory (`maildir`, the queue
file format of zope.sendmail 7.3); a folder object (7.3's
``setMaildir``) is wrapped by the Maildir store; a store is used as it is.
A queue of another kind (a database's URL) would be recognised here, and
only here.  `queue_key` names a queue as this process's registries know
it.  `doorbell` wakes a queue's waiting processors within a process, and
`retrystate` is the record every store keeps of a message's attempts.
"""
import os

from zope.sendmail.interfaces import IQueueStore
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.stores.maildir.store import MaildirStore
from zope.sendmail.stores.maildir.store import check_options as \
    _maildir_options
from zope.sendmail.stores.maildir.store import check_queue


def queue_key(queue):
    """The `IQueueStore.key` of *queue* (anything `open_store` takes),
    without opening it: the real path of a Maildir directory."""
    if IQueueStore.providedBy(queue):
        return queue.key
    if isinstance(queue, (str, bytes, os.PathLike)):
        return os.path.realpath(queue)
    # A folder object: named by its path if it has one, else by itself.
    return open_store(queue).key


def open_store(queue, *, create=True, must_exist=False, shared_group=False,
               maildir_factory=None, **options):
    """The `IQueueStore` of *queue*: a path (a Maildir directory), a
    Maildir folder object (an `IMaildir`: this package's or one of 7.3's
    kind), or a store, which is returned as it is.

    For a path: with *create*, a missing directory becomes a queue
    (deliveries, processors, ZCML); with *must_exist*, an operator's
    command, the path must be a queue already -- or an empty directory,
    made one with *create* -- else `QueueError` says why (see
    `zope.sendmail.stores.maildir.store.check_queue`).  A queue that
    others could tamper with is refused (`UnsafeQueueError`), unless
    *shared_group* accepts a group-writable one.  *maildir_factory* (an
    `IMaildirFactory`, `Maildir` by default) opens the directory; a
    factory of 7.3's kind is called without *shared_group* unless it is
    true.  *options* are the store's own (`MaildirStore`: durable, the
    processor lease settings, clock).
    """
    if IQueueStore.providedBy(queue):
        return queue
    if not isinstance(queue, (str, bytes, os.PathLike)):
        return MaildirStore(queue, **options)
    factory = maildir_factory or Maildir
    # 7.3's factories take no such keyword: given only when set.
    shared = {'shared_group': True} if shared_group else {}
    if must_exist:
        check_queue(queue, create, shared_group)
        if not all(os.path.isdir(os.path.join(queue, sub))
                   for sub in ('tmp', 'new', 'cur')):
            # An empty directory, not made a queue: nothing to look at.
            return MaildirStore(None, path=queue, **options)
        return MaildirStore(factory(queue, **shared), **options)
    return MaildirStore(factory(queue, create=create, **shared), **options)


def check_options(**options):
    """Raise ValueError for store *options* (a processor's: the lease
    settings) that no store could work with, before any queue is opened."""
    _maildir_options(**options)
