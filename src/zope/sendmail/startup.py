"""Starting the queue processor threads when the application starts.

Loading ZCML starts no thread: a ``<mail:queuedDelivery>`` directive only
*registers* its queue here (`register_queue`).  The threads are started by
`start_processor_threads`, a subscriber to ``IDatabaseOpenedWithRoot`` and
``IProcessStarting`` from ``zope.processlifetime`` -- one thread per queue
directory, however many times the events fire and however many deliveries
share the queue.  The directive's actions register that subscriber
(`register_subscribers`, once, whatever else the site includes), so a site
including only ``meta.zcml`` sends too.  Mail committed to a registered
queue whose thread was never started is logged once (`committed`).  The
threads are stopped at interpreter exit, and by ``zope.testing.cleanup``,
which also forgets the registrations, so that one test's thread never runs
into the next.
"""
import atexit
import logging
import os
import threading

from zope.component import getSiteManager
from zope.component import getUtility
from zope.processlifetime import IDatabaseOpenedWithRoot
from zope.processlifetime import IProcessStarting

from zope.sendmail.interfaces import IMailer
from zope.sendmail.queue import QueueProcessorThread


log = logging.getLogger(__name__)

_lock = threading.Lock()
_queues = {}    # real path of the queue -> (path, mailer name, options)
_threads = {}   # real path of the queue -> running QueueProcessorThread
_started = set()  # real paths of the queues whose thread was ever started
_warned = set()   # real paths of the queues `committed` warned about
STARTUP_EVENTS = (IDatabaseOpenedWithRoot, IProcessStarting)


def register_queue(queue_path, mailer, **options):
    """Arrange for a processor thread on *queue_path*, sending through the
    `IMailer` utility named *mailer*, once the application starts.

    *options* are keyword arguments of `QueueProcessorThread` (interval,
    retry, connections, max_messages).  Registering a queue again replaces
    the earlier registration.
    """
    with _lock:
        _queues[os.path.realpath(queue_path)] = (queue_path, mailer, options)


def registered_queues():
    """The queue paths registered so far."""
    with _lock:
        return sorted(path for path, mailer, options in _queues.values())


def running_threads():
    """The processor threads started here, by queue path."""
    with _lock:
        return {thread.queuePath: thread for thread in _threads.values()}


def register_subscribers(info=''):
    """Subscribe `start_processor_threads` to `STARTUP_EVENTS` in the
    current site manager, unless it is already (by ``configure.zcml``, or
    by an earlier queue): called by the actions of ``queuedDelivery``."""
    # Importing it installs the bridge from zope.event.notify to the
    # component registry's subscribers, which configure.zcml would give.
    import zope.component.event  # noqa: F401
    registry = getSiteManager()
    present = {registration.required for registration in
               registry.registeredHandlers()
               if registration.handler is start_processor_threads}
    for event in STARTUP_EVENTS:
        if (event,) not in present:
            registry.registerHandler(start_processor_threads, (event,),
                                     info=info)


def committed(queue_path):
    """Mail was committed to *queue_path* (called by the queued delivery):
    log one WARNING if its thread is registered here but never started."""
    if not _queues:
        return  # no thread configured in this process: nothing to check
    key = os.path.realpath(queue_path)
    with _lock:
        if key not in _queues or key in _started or key in _warned:
            return
        _warned.add(key)
    log.warning(
        'mail committed to %s waits: its queue processor thread is'
        ' configured (<mail:queuedDelivery processorThread="true">) but has'
        ' not been started; it starts when the application notifies'
        ' zope.processlifetime\'s IDatabaseOpenedWithRoot or'
        ' IProcessStarting, or when it calls'
        ' zope.sendmail.startup.start_processor_threads()', queue_path)


def start_processor_threads(event=None):
    """Start a processor thread for every registered queue that has none.

    The `IMailer` utilities are looked up now, when the application has
    finished configuring itself.
    """
    with _lock:
        for key, (path, mailer_name, options) in sorted(_queues.items()):
            thread = _threads.get(key)
            if thread is not None and thread.is_alive():
                continue
            thread = QueueProcessorThread(
                mailer=getUtility(IMailer, mailer_name), queuePath=path,
                **options)
            thread.start()
            _threads[key] = thread
            _started.add(key)
            log.info('started the queue processor of %s (mailer %r)', path,
                     mailer_name)


def stop_processor_threads(timeout=10):
    """Stop the threads started here; each finishes the message it sends."""
    with _lock:
        threads = list(_threads.values())
        _threads.clear()
    for thread in threads:
        if not thread.stop(timeout):
            log.warning('queue processor of %s did not stop within %s s',
                        thread.queuePath, timeout)


def _reset():
    stop_processor_threads()
    with _lock:
        _queues.clear()
        _started.clear()
        _warned.clear()


atexit.register(stop_processor_threads)

try:
    from zope.testing.cleanup import addCleanUp
except ImportError:  # zope.testing is for tests only
    pass
else:
    addCleanUp(_reset)
