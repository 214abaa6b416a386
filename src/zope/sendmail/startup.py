"""Starting the queue processor threads when the application starts.

Loading ZCML starts no thread: a ``<mail:queuedDelivery>`` directive only
*registers* its queue here (`register_queue`).  The threads are started by
`start_processor_threads`, a subscriber (see ``configure.zcml``) to
``IDatabaseOpenedWithRoot`` and ``IProcessStarting`` from
``zope.processlifetime`` -- one thread per queue directory, however many
times the events fire and however many deliveries share the queue.  They
are stopped at interpreter exit, and by ``zope.testing.cleanup``, which also
forgets the registrations, so that one test's thread never runs into the
next.
"""
import atexit
import logging
import os
import threading

from zope.component import getUtility

from zope.sendmail.interfaces import IMailer
from zope.sendmail.queue import QueueProcessorThread


log = logging.getLogger(__name__)

_lock = threading.Lock()
_queues = {}    # real path of the queue -> (path, mailer name, options)
_threads = {}   # real path of the queue -> running QueueProcessorThread


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


atexit.register(stop_processor_threads)

try:
    from zope.testing.cleanup import addCleanUp
except ImportError:  # zope.testing is for tests only
    pass
else:
    addCleanUp(_reset)
