"""Starting the queue processor threads when the application starts.

Loading ZCML starts no thread: a ``<mail:queuedDelivery>`` directive only
*registers* its queue (`register_queue`), as an
`IQueueProcessorRegistration` utility in the component registry in force,
so that the registration goes away with that registry and is seen through
a registry stacked on it.  The threads are started by
`start_processor_threads`, a subscriber to ``IDatabaseOpenedWithRoot`` and
``IProcessStarting`` from ``zope.processlifetime``, for the registrations
of the registry in force then -- one thread per queue (a directory, a
PostgreSQL URL), however many times the events fire and however many
deliveries share the queue.  A queue that cannot start (its mailer
missing, its directory unusable, psycopg missing) is logged and the others
start; the notification never raises.  The
directive's actions register that subscriber (`register_subscribers`,
once, whatever else the site includes), so a site including only
``meta.zcml`` sends too.  Mail committed to a registered queue whose
thread was never started is logged once (`committed`).  The threads
running in this process are in one registry,
`zope.sendmail.processing.registry`: a queue that has a thread running
there gets no other; they are stopped at interpreter exit, and by
``zope.testing.cleanup`` (which also resets the component registry), so
that one test's thread never runs into the next.  Queues are known by
their key (`zope.sendmail.stores.queue_key`: a directory's real path, a
PostgreSQL URL without its password), and shown by their name
(`zope.sendmail.stores.queue_name`: never a password).
"""
import atexit
import logging
import threading

from zope.component import getSiteManager
from zope.interface import implementer
from zope.processlifetime import IDatabaseOpenedWithRoot
from zope.processlifetime import IProcessStarting

from zope.sendmail.interfaces import IMailer
from zope.sendmail.interfaces import IQueueProcessorRegistration
from zope.sendmail.interfaces import QueueError
from zope.sendmail.processing import registry
from zope.sendmail.processing.thread import QueueProcessorThread
from zope.sendmail.stores import queue_key
from zope.sendmail.stores import queue_name


log = logging.getLogger(__name__)

_lock = threading.Lock()
_started = set()  # keys of the queues whose thread was ever started here
_failed = {}      # key -> why its thread could not start, last time
_warned = set()   # keys of the queues `committed` warned about
STARTUP_EVENTS = (IDatabaseOpenedWithRoot, IProcessStarting)


@implementer(IQueueProcessorRegistration)
class QueueProcessorRegistration:
    """The queue at *queuePath*, to be sent through the `IMailer` utility
    named *mailer* by a `QueueProcessorThread` built with *options*."""

    def __init__(self, queuePath, mailer, options=None, metrics=False):
        self.queuePath = queuePath
        self.mailer = mailer
        self.options = dict(options or {})
        self.metrics = metrics

    def __repr__(self):
        return (f'<{type(self).__name__} {queue_name(self.queuePath)!r}'
                f' mailer {self.mailer!r}>')


def register_queue(queue_path, mailer, metrics=False, **options):
    """Arrange for a processor thread on *queue_path*, sending through the
    `IMailer` utility named *mailer*, once the application starts: register
    its `IQueueProcessorRegistration` in the current site manager.

    *options* are keyword arguments of `QueueProcessorThread` (interval,
    retry, connections, max_messages).  With *metrics*, its thread is
    counted in prometheus_client's default registry.  Registering a queue
    again replaces the earlier registration.  Nothing is looked up or
    started here.
    """
    getSiteManager().registerUtility(
        QueueProcessorRegistration(queue_path, mailer, options, metrics),
        IQueueProcessorRegistration, queue_key(queue_path))


def registrations():
    """The `IQueueProcessorRegistration` utilities of the registry in force
    (its bases' included), by the key of their queue."""
    return dict(getSiteManager().getUtilitiesFor(IQueueProcessorRegistration))


def registered_queues():
    """The queues registered in the registry in force, by name (a
    directory's path as configured; a URL without its password)."""
    return sorted(queue_name(registration.queuePath)
                  for registration in registrations().values())


def running_threads():
    """The processor threads running in this process, by queue path."""
    return {thread.queuePath: thread for thread in registry.running()}


def register_subscribers(info=''):
    """Subscribe `start_processor_threads` to `STARTUP_EVENTS` in the
    current site manager, unless it is already subscribed there or in its
    bases (by ``configure.zcml``, or by an earlier queue): called by the
    actions of ``queuedDelivery``."""
    # Importing it installs the bridge from zope.event.notify to the
    # component registry's subscribers, which configure.zcml would give.
    import zope.component.event  # noqa: F401
    registry = getSiteManager()
    for event in STARTUP_EVENTS:
        # The handlers the event would reach, the bases' included.
        if start_processor_threads not in registry.adapters.subscriptions(
                (event,), None):
            registry.registerHandler(start_processor_threads, (event,),
                                     info=info)


def committed(queue):
    """Mail was committed to *queue* (its store, or anything
    `zope.sendmail.stores.open_store` takes; called by the queued delivery
    after the commit: never raises): log one WARNING if its thread is
    registered in the registry in force but was never started."""
    key = queue_key(queue)
    queue_path = queue_name(queue)  # as logs show it
    with _lock:
        if key in _started or key in _warned:
            return
    try:
        registration = getSiteManager().queryUtility(
            IQueueProcessorRegistration, key)
    except Exception:
        # A broken site manager hook is the application's to report; this
        # is a hint only, and must not fail a commit that is done.
        log.debug('cannot look up the queue registration of %s', key,
                  exc_info=True)
        return
    if registration is None:
        return  # no thread of this process is meant to send this queue
    with _lock:
        if key in _started or key in _warned:
            return
        _warned.add(key)
        failure = _failed.get(key)
    if failure is not None:
        log.warning('mail committed to %s waits: its queue processor thread'
                    ' could not start: %s', queue_path, failure)
        return
    log.warning(
        'mail committed to %s waits: its queue processor thread is'
        ' configured (<mail:queuedDelivery processorThread="true">) but has'
        ' not been started; it starts when the application notifies'
        ' zope.processlifetime\'s IDatabaseOpenedWithRoot or'
        ' IProcessStarting, or when it calls'
        ' zope.sendmail.startup.start_processor_threads()', queue_path)


def start_processor_threads(event=None):
    """Start a processor thread for every queue registered in the registry
    in force that has none running.

    The `IMailer` utilities are looked up now, when the application has
    finished configuring itself.  A queue that cannot start is logged as
    an ERROR naming it and its mailer, and the others start: this is the
    subscriber of the application's startup events, which must never
    raise.
    """
    try:
        queues = sorted(registrations().items())
    except Exception:
        # Not even the registrations: a broken registry, which the
        # application will meet again; its start must go on.
        log.exception('cannot start the queue processors: unexpected error'
                      ' looking up their registrations')
        return
    with _lock:
        for key, registration in queues:
            if registry.running(key):
                continue
            thread = _start(key, registration)
            if thread is not None:
                _started.add(key)
                _failed.pop(key, None)


def _start(key, registration):
    """The started thread of *registration*, or None after logging why it
    could not start (recorded for `committed`)."""
    path, name = registration.queuePath, registration.mailer
    shown = queue_name(path)  # never a URL's password
    try:
        mailer = getSiteManager().queryUtility(IMailer, name)
        if mailer is None:
            # A registry replaced or changed since the queue's registration.
            raise LookupError(f'no IMailer utility is named {name!r} in the'
                              f' component registry in force')
        observer = _metrics() if getattr(registration, 'metrics', False) \
            else None
        thread = QueueProcessorThread(mailer=mailer, queuePath=path,
                                      observer=observer,
                                      **registration.options)
        thread.start()
        if observer is not None:
            observer.watch(thread.store)
    except (LookupError, OSError, ValueError, QueueError, ImportError) as e:
        # The site's configuration or its queue (a directory missing, not
        # a Maildir, refused; a database that refuses or lacks psycopg):
        # the site's to fix, and the other queues' not to suffer from;
        # not a bug, so no traceback.
        reason, traceback = str(e), None
    except Exception as e:
        # A bug: logged with its traceback; still the other queues start.
        reason, traceback = f'unexpected error: {e!r}', e
    else:
        log.info('started the queue processor of %s (mailer %r)', shown,
                 name)
        return thread
    if _failed.get(key) != reason:
        # Both startup events come, and may come again: said once.
        log.error('the queue processor of %s (mailer %r) cannot start: %s',
                  shown, name, reason, exc_info=traceback)
    _failed[key] = reason
    return None


def _metrics():
    """The metrics of prometheus_client's default registry (the extra
    zope.sendmail[metrics]; ImportError without it)."""
    from zope.sendmail.monitoring.metrics import metrics_for
    return metrics_for()


def stop_processor_threads(timeout=10):
    """Stop the processor threads running in this process; each finishes
    the messages it sends.  A queue counted in the metrics is no longer
    shown there."""
    for thread in registry.running():
        if not thread.stop(timeout):
            log.warning('queue processor of %s did not stop within %s s',
                        thread.queuePath, timeout)
        unwatch = getattr(getattr(thread, 'observer', None), 'unwatch',
                          None)
        if unwatch is not None:
            unwatch(thread.store)


def _reset():
    stop_processor_threads()
    with _lock:
        _started.clear()
        _failed.clear()
        _warned.clear()


atexit.register(stop_processor_threads)

try:
    from zope.testing.cleanup import addCleanUp
except ImportError:  # zope.testing is for tests only
    pass
else:
    addCleanUp(_reset)
