"""Where queued mail waits: the queue stores, behind `IQueueStore`.

Deliveries, processors and the operators' commands talk to a store, never
to its files.  `open_store` is the one place that chooses the store from
what the user gives: a path is a Maildir directory (`maildir`, the queue
file format of zope.sendmail 7.3); a libpq URL (``postgresql://...``, see
`zope.sendmail.stores.postgresql.url`) is a queue in a PostgreSQL database
(`postgresql`, imported only when such a queue is opened: psycopg is an
optional dependency); a folder object (7.3's ``setMaildir``) is wrapped by
the Maildir store; a store is used as it is.  A URL is recognised here, and
only here, and never becomes a directory.  `queue_key` names a queue as
this process's registries know it, `queue_name` as logs show it (never
with a password).  `doorbell` wakes a queue's waiting processors within a
process, and `retrystate` is the record every store keeps of a message's
attempts.
"""
import os

from zope.sendmail.interfaces import IQueueStore
from zope.sendmail.interfaces import QueueError
from zope.sendmail.stores.maildir.folder import Maildir
from zope.sendmail.stores.maildir.store import MaildirStore
from zope.sendmail.stores.maildir.store import check_options as \
    _maildir_options
from zope.sendmail.stores.maildir.store import check_queue


#: What `open_store` says when a URL is opened without psycopg.
NEEDS_PSYCOPG = ("a PostgreSQL queue needs psycopg:"
                 " pip install 'zope.sendmail[postgresql]'")


def queue_url(queue):
    """The `QueueURL` of *queue* when it is a PostgreSQL URL, else None;
    raises `QueueError` for a URL that names no queue (never showing its
    password).  Reads the text only: psycopg is not imported."""
    if not isinstance(queue, str):
        return None
    # The module reads text only: importing it is cheap and needs nothing.
    from zope.sendmail.stores.postgresql.url import QueueURL
    from zope.sendmail.stores.postgresql.url import is_queue_url
    if not is_queue_url(queue):
        return None
    try:
        return QueueURL(queue)
    except ValueError as e:
        raise QueueError(str(e)) from None


def is_url(queue):
    """Whether *queue* names a queue by URL (a PostgreSQL database's),
    usable or not, rather than by a path: a URL must never become a
    directory.  Reads the text only."""
    try:
        return queue_url(queue) is not None
    except QueueError:
        return True


def queue_key(queue):
    """The `IQueueStore.key` of *queue* (anything `open_store` takes),
    without opening it: the real path of a Maildir directory, the URL of
    a PostgreSQL queue without its password, with the queue's name."""
    if IQueueStore.providedBy(queue):
        return queue.key
    url = queue_url(queue)
    if url is not None:
        return url.key
    if isinstance(queue, (str, bytes, os.PathLike)):
        return os.path.realpath(queue)
    # A folder object: named by its path if it has one, else by itself.
    return open_store(queue).key


def queue_name(queue):
    """The `IQueueStore.name` of *queue* (anything `open_store` takes),
    without opening it: what log lines and messages show of it.  A
    Maildir's path as given; a URL with its password masked (also when
    it is no usable URL)."""
    if IQueueStore.providedBy(queue):
        return queue.name
    try:
        url = queue_url(queue)
    except QueueError:
        # Not a URL libpq would take, yet text that may hold a password:
        # its scheme only.
        return queue.partition(':')[0] + ':...'
    if url is not None:
        return url.masked
    if isinstance(queue, (str, bytes, os.PathLike)):
        return os.fsdecode(queue)
    return open_store(queue).name


def open_store(queue, *, create=True, must_exist=False, shared_group=False,
               maildir_factory=None, **options):
    """The `IQueueStore` of *queue*: a path (a Maildir directory), a
    Maildir folder object (an `IMaildir`: this package's or one of 7.3's
    kind), a PostgreSQL URL, or a store, which is returned as it is.

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

    For a URL (`queue_url`): the store asks the database nothing until
    it is used; with *create*, the queue's tables are made then, if
    missing.  With *must_exist* and without *create* (an operator's
    command), the database is asked at once, and its tables must be there
    already, else `QueueError` says so (``zope-sendmail --create-schema
    URL`` makes them).  The database itself is never created.
    *shared_group* and *maildir_factory* are a directory's, and do not
    apply; *durable* is left to the database.  Without psycopg,
    `QueueError` says how to install it (`NEEDS_PSYCOPG`).
    """
    if IQueueStore.providedBy(queue):
        return queue
    url = queue_url(queue)
    if url is not None:
        return _open_postgres(queue, create, must_exist, options)
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


def check_options(queue=None, **options):
    """Raise ValueError for store *options* (a processor's: the lease
    settings) that the store of *queue* (anything `open_store` takes)
    cannot work with, before it is opened.  Without *queue*, by the rules
    of the default store, the Maildir's."""
    if is_url(queue):
        # Imported here: psycopg is not needed to check numbers.
        from zope.sendmail.stores.postgresql.store import \
            check_options as _postgres_options
        _postgres_options(**options)
    else:
        _maildir_options(**options)


def create_schema(queue):
    """Create the tables of the PostgreSQL queue *queue* (a URL) in its
    database unless they are there; return whether it created them.
    Raises `QueueError` for anything but a URL, or a database that cannot
    be used (unreachable, refusing; psycopg missing)."""
    url = queue_url(queue)
    if url is None:
        raise QueueError(f'{queue_name(queue)!r} is no PostgreSQL URL:'
                         f' only a queue in a database has tables to'
                         f' create')
    return _postgres().create_schema(queue)


def _postgres():
    """The `zope.sendmail.stores.postgresql` package, imported now: only
    a URL being opened needs psycopg, an optional dependency, which is
    looked for first (any other ImportError is a bug, and raised)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise QueueError(NEEDS_PSYCOPG) from None
    from zope.sendmail.stores import postgresql
    return postgresql


def _open_postgres(text, create, must_exist, options):
    # A database's commit is as durable as its server makes it
    # (synchronous_commit): a delivery's durable setting is a Maildir's.
    options.pop('durable', None)
    store = _postgres().open_postgres_store(text, create=create, **options)
    if must_exist and not create:
        # An operator's command: what is wrong with the queue (no tables,
        # no database) is said now, before anything is done.  The store
        # opens lazily; its status is the cheapest question that needs
        # the queue's tables.
        try:
            store.status()
        except BaseException:
            store.close()
            raise
    return store
