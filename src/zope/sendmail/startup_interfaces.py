"""The contract of a queue whose processor thread starts with the
application: its registration in the component registry.

`zope.sendmail.startup` implements, registers and reads it;
`zope.sendmail.interfaces` exports it too.
"""
from zope.interface import Attribute
from zope.interface import Interface
from zope.schema import TextLine


class IQueueProcessorRegistration(Interface):
    """A queue whose processor thread is to start when the application
    starts.

    Registered as a utility named after the real path of the queue
    directory, in the component registry in force when the configuration
    runs, by the actions of ``<mail:queuedDelivery
    processorThread="true">`` (through
    `zope.sendmail.startup.register_queue`).  It therefore lives and dies
    with that registry: a test's cleanup or a popped test layer takes it
    away, and a registry whose ``__bases__`` hold it sees it, as it sees
    any utility.  Registering a queue again replaces its registration.

    Read by `zope.sendmail.startup.start_processor_threads` when the
    application starts (``IDatabaseOpenedWithRoot``,
    ``IProcessStarting``), which starts one thread per queue directory
    for the registrations of the registry in force then, and by
    `zope.sendmail.startup.committed`.

    A registration describes; it never runs anything.  Registering one
    must never start a thread nor look up the mailer: the mailer is looked
    up when the thread starts.  A registration that cannot start (its
    mailer missing, its directory refused) must never keep another from
    starting, nor make the application's startup notification raise.
    """

    queuePath = TextLine(
        title="Queue path",
        description="The Maildir directory of the queue, as configured.")

    mailer = TextLine(
        title="Mailer",
        description="The name of the IMailer utility the thread sends"
                    " through, looked up when it starts.")

    options = Attribute(
        "The keyword arguments of QueueProcessorThread besides the mailer"
        " and the queue (interval, retry, connections, ...), a dict.")
