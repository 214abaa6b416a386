"""The ``mail`` ZCML directives: ``smtpMailer``, ``failoverMailer``,
``queuedDelivery`` and ``directDelivery`` (namespace
``http://namespaces.zope.org/mail``).

This module owns the directive schemas and their handlers.  A handler only
validates its attributes and computes actions; every side effect (creating
the queue directory, registering utilities, among them a queue's
`IQueueProcessorRegistration` for `zope.sendmail.startup`) happens when
zope.configuration executes the actions, in the registry in force then, and
loading ZCML starts no thread.  The mailer options are defined
once, by the fields of `ISMTPMailer`, and the queue processor's by
`zope.sendmail.options.IQueueProcessorOptions`; the ``smtpMailer`` and
``queuedDelivery`` schemas are derived from them, as the ``zope-sendmail``
program's options are.  A delivery with a ``permission`` carries a security
checker, as zope.component's ``<utility permission>`` gives, so untrusted
code reaching it through a security proxy needs the permission, while
trusted code calls it directly.  A queued delivery's queue is a Maildir
directory (``queuePath``) or a PostgreSQL URL (``queue``): exactly one of
them, and neither is taken for the other.
"""
import copy
import logging

from zope.component import queryUtility
from zope.component import zcml as component_zcml
from zope.configuration.exceptions import ConfigurationError
from zope.configuration.fields import Bool
from zope.configuration.fields import GlobalObject
from zope.configuration.fields import Path
from zope.configuration.fields import Tokens
from zope.interface import Interface
from zope.interface.interface import InterfaceClass
from zope.schema import Bool as SchemaBool
from zope.schema import TextLine
from zope.schema import ValidationError as SchemaValidationError
from zope.schema import getFieldsInOrder
from zope.security.checker import CheckerPublic
from zope.security.checker import InterfaceChecker
from zope.security.interfaces import PUBLIC_PERMISSION_NAME
from zope.security.zcml import Permission

from zope.sendmail import startup
from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.interfaces import IMailDelivery
from zope.sendmail.interfaces import IMailer
from zope.sendmail.interfaces import ISMTPMailer
from zope.sendmail.interfaces import QueueError
from zope.sendmail.smtp.failover import FailoverMailer
from zope.sendmail.smtp.mailer import SMTPMailer
from zope.sendmail.options import OBJECT_OPTIONS
from zope.sendmail.options import Seconds
from zope.sendmail.options import PATH_OPTIONS
from zope.sendmail.options import PROCESSOR_OPTIONS
from zope.sendmail.options import processor_arguments
from zope.sendmail.options import zcml_name
from zope.sendmail.stores import is_url
from zope.sendmail.stores import open_store
from zope.sendmail.stores import queue_name
from zope.sendmail.stores import queue_url
from zope.sendmail.stores.maildir.queuedirs import check_writable

# The other names 7.3's zcml module had, for code that imports them from
# here.  Its queuedDelivery started a QueueProcessorThread; the startup
# subscribers do now (zope.sendmail.startup).
from zope.component import getUtility  # noqa: F401
from zope.component.security import proxify  # noqa: F401
from zope.component.zcml import handler  # noqa: F401
from zope.schema import ASCIILine  # noqa: F401
from zope.schema import Float  # noqa: F401
from zope.schema import Int  # noqa: F401

from zope.sendmail.processing.thread import \
    QueueProcessorThread  # noqa: F401

#: 7.3's flag for directives with a ``permission``; zope.security is a
#: dependency now, so they are always supported.
SECURITY_SUPPORT = True


log = logging.getLogger(__name__)

# Actions of the deliveries run after all actions of the default order 0,
# among which every smtpMailer's registration, and after the failover
# mailers', which look up their mailers when they run: a delivery may then
# be declared before its mailer (in an earlier included file, say) and
# still find it.
FAILOVER_ORDER = 1
DELIVERY_ORDER = 2


class IMailerDirective(Interface):
    """Register a named `IMailer` utility."""

    name = TextLine(
        title="Name",
        description="The name of the IMailer utility, which deliveries give"
                    " as their 'mailer'.",
        required=True)


def _directive_field(name, field):
    """The ZCML field of the mailer option *field* of `ISMTPMailer`.

    Options that are file names (`PATH_OPTIONS`) are resolved relative to
    the directory of the ZCML file.

    zope.schema's Bool takes anything but "true" for false; the ZCML Bool
    rejects what it cannot read, so ``implicit_tls="tomato"`` is an error.
    """
    if name in OBJECT_OPTIONS:
        # A dotted name, resolved as ZCML resolves them (".tokens.get").
        field = GlobalObject(title=field.title, __name__=name,
                             description=field.description)
    elif name in PATH_OPTIONS or isinstance(field, SchemaBool):
        factory = Path if name in PATH_OPTIONS else Bool
        field = factory(title=field.title, description=field.description,
                        default=field.default, __name__=name)
    else:
        # A copy keeps whatever constraints the interface sets.
        field = copy.copy(field)
    # Every option has a default, so none is required in ZCML.
    field.required = False
    return field


MAILER_OPTIONS = tuple(name for name, field in getFieldsInOrder(ISMTPMailer))

ISMTPMailerDirective = InterfaceClass(
    'ISMTPMailerDirective', (IMailerDirective,),
    {name: _directive_field(name, field)
     for name, field in getFieldsInOrder(ISMTPMailer)},
    __doc__="Register an SMTPMailer as a named IMailer utility; the options"
            " are those of ISMTPMailer.",
    __module__=__name__)


def smtpMailer(_context, name, **options):
    """Handle ``<mail:smtpMailer>``."""
    settings = {option: ISMTPMailerDirective[option].default
                for option in MAILER_OPTIONS}
    settings.update(options)
    try:
        # Keywords only: 7.3 passed implicit_tls where no_tls was expected.
        mailer = SMTPMailer(**settings)
    except ValueError as e:
        raise ConfigurationError(f'mailer {name!r}: {e}')
    _context.action(
        discriminator=('utility', IMailer, name),
        callable=component_zcml.handler,
        args=('registerUtility', mailer, IMailer, name, _context.info))


class IFailoverMailerDirective(IMailerDirective):
    """Register a `FailoverMailer` as a named IMailer utility: it sends
    through the first of the named mailers that works."""

    mailers = Tokens(
        title="Mailers",
        description="The names of the IMailer utilities (smtpMailer"
                    " directives) to send through, first choice first,"
                    " separated by spaces.",
        value_type=TextLine(),
        required=True)

    retryPeriod = Seconds(
        title="Retry period",
        description="Seconds a relay that failed (unreachable, login or TLS"
                    " refused, quota used up) is skipped before it is tried"
                    " again.",
        default=60.0, min=0.001, required=False)

    roundRobin = Bool(
        title="Round robin",
        description="Spread new connections over the relays that are up,"
                    " rather than using the first that works.",
        default=False, required=False)


def register_failover_mailer(name, mailers, retry_period, round_robin,
                             info):
    """Register the failover mailer *name* over the mailers named
    *mailers*, looked up now (a missing one is a `ConfigurationError`)."""
    mailer = FailoverMailer([lookup_mailer(m) for m in mailers],
                            retry_period=retry_period,
                            round_robin=round_robin)
    component_zcml.handler('registerUtility', mailer, IMailer, name, info)


def failoverMailer(_context, name, mailers, retryPeriod=60.0,
                   roundRobin=False):
    """Handle ``<mail:failoverMailer>``."""
    mailers = tuple(mailers)
    if not mailers:
        raise ConfigurationError(f'failover mailer {name!r}: name at least'
                                 f' one mailer in mailers')
    if name in mailers:
        raise ConfigurationError(f'failover mailer {name!r} names itself'
                                 f' among its mailers')
    if len(set(mailers)) != len(mailers):
        raise ConfigurationError(f'failover mailer {name!r} names a mailer'
                                 f' twice: {" ".join(mailers)}')
    # Looked up when the action runs: after every smtpMailer's (order 0),
    # before the deliveries', which may name this one.
    _context.action(
        discriminator=('utility', IMailer, name),
        callable=register_failover_mailer,
        args=(name, mailers, float(retryPeriod), bool(roundRobin),
              _context.info),
        order=FAILOVER_ORDER)


class IDeliveryDirective(Interface):
    """What both delivery directives share."""

    name = TextLine(
        title="Name",
        description="The name of the IMailDelivery utility.",
        default='Mail',
        required=False)

    mailer = TextLine(
        title="Mailer",
        description="The name of the IMailer utility to send through.",
        required=True)

    permission = Permission(
        title="Permission",
        description="The permission untrusted code needs to send through"
                    " this delivery; unprotected when not given.",
        required=False)


class IDirectDeliveryDirective(IDeliveryDirective):
    """Register a delivery that relays mail while the transaction commits.
    """


class ValidationError(SchemaValidationError):
    """What is wrong with a value, said as it is (zope.schema's own would
    show the value: a URL's password)."""

    def __str__(self):
        return self.args[0]

    doc = __str__


class QueuePathField(Path):
    """A Maildir directory, relative to the ZCML file's; a URL is refused
    (it belongs in ``queue``): made a path, it would become a directory
    named after the URL."""

    def fromUnicode(self, value):
        if is_url(value.strip()):
            raise ValidationError(
                'queuePath is a Maildir directory; a PostgreSQL URL goes in'
                ' queue="postgresql://..." instead')
        return super().fromUnicode(value)


class QueueURLField(TextLine):
    """A PostgreSQL URL naming a queue (``postgresql://...``), checked as
    it is read; the error never shows its password."""

    def fromUnicode(self, value):
        value = value.strip()
        try:
            url = queue_url(value)
        except QueueError as e:
            raise ValidationError(str(e)) from None
        if url is None:
            raise ValidationError(
                'queue is a PostgreSQL URL (postgresql://...); a Maildir'
                ' directory goes in queuePath instead')
        return value


class _IQueuedDelivery(IDeliveryDirective):
    """Register a delivery that writes mail into a queue (a Maildir
    directory, or a queue in a PostgreSQL database), and the queue with the
    processor threads started when the application starts.  Exactly one of
    ``queuePath`` and ``queue`` names the queue.
    """

    queuePath = QueuePathField(
        title="Queue path",
        description="The Maildir directory of the queue, created if"
                    " missing.",
        required=False)

    queue = QueueURLField(
        title="Queue URL",
        description="A queue in a PostgreSQL database, as a libpq URL:"
                    " postgresql://user@host/db, postgresql:///db?host=/run/"
                    "postgresql, postgresql://?service=NAME; ?queue=NAME"
                    " names one of several queues in the database.  Its"
                    " tables are created at first use if missing.  A"
                    " password is better"
                    " kept in libpq's password file or service file than in"
                    " the URL.",
        required=False)

    processorThread = Bool(
        title="Processor thread",
        description="Send the queued mail from a thread of this process,"
                    " started when the application starts.",
        default=True,
        required=False)

    metrics = Bool(
        title="Metrics",
        description="Count what the processor thread does and show the"
                    " queue in prometheus_client's default registry, which"
                    " an application exposing /metrics serves (needs the"
                    " extra zope.sendmail[metrics]).",
        default=False,
        required=False)


def _processor_field(name, field):
    """The ZCML field of the processor setting *name*: the field of
    `IQueueProcessorOptions`, under its camelCase attribute name (a
    boolean read exactly, as `_directive_field` does)."""
    if isinstance(field, SchemaBool):
        return Bool(title=field.title, description=field.description,
                    default=field.default, required=False,
                    __name__=zcml_name(name))
    field = copy.copy(field)
    field.__name__ = zcml_name(name)
    return field


IQueuedDeliveryDirective = InterfaceClass(
    'IQueuedDeliveryDirective', (_IQueuedDelivery,),
    {zcml_name(option.name): _processor_field(option.name, option.field)
     for option in PROCESSOR_OPTIONS},
    __doc__=_IQueuedDelivery.__doc__.rstrip() + """

    The processor thread's settings are those of `IQueueProcessorOptions`
    (in `zope.sendmail.options`), under camelCase names.
    """,
    __module__=__name__)


def _protect(delivery, permission):
    """Give *delivery* the checker a security proxy of it will use.

    The delivery itself is registered, never a proxy of it: trusted code
    calls it freely, as with 7.3.
    """
    if permission is not None:
        if permission == PUBLIC_PERMISSION_NAME:
            permission = CheckerPublic
        delivery.__Security_checker__ = InterfaceChecker(IMailDelivery,
                                                         permission)
    return delivery


def lookup_mailer(name):
    """The `IMailer` utility *name*; a `ConfigurationError` if there is none.
    """
    mailer = queryUtility(IMailer, name)
    if mailer is None:
        raise ConfigurationError(
            f'mailer {name!r} is not defined: no IMailer utility has that'
            f' name (declare one with <mail:smtpMailer name="{name}" ...>)')
    return mailer


def prepare_queue(queue, shared_group=False):
    """Open the queue *queue* (a path or a URL) through its store and
    check what can be checked now: a Maildir directory is made if missing,
    and must be safe (*shared_group* accepts one its group may write to)
    and writable; a URL must name a queue, and psycopg be there.  A
    database is asked nothing yet (its store opens lazily): a site must
    start while its database is away, and its tables are made when the
    queue is first used."""
    shown = queue_name(queue)  # never a URL's password
    try:
        store = open_store(queue, create=True, shared_group=shared_group)
        try:
            if getattr(store, 'path', None) is not None:
                check_writable(store.path)
        finally:
            store.close()
    except (OSError, ValueError, QueueError) as e:
        raise ConfigurationError(
            f'cannot use {shown!r} as a mail queue: {e}')
    log.debug('mail queue %s is ready', shown)


def register_delivery(delivery, name, info):
    component_zcml.handler('registerUtility', delivery, IMailDelivery, name,
                           info)


def register_direct_delivery(mailer, permission, name, info):
    delivery = DirectMailDelivery(lookup_mailer(mailer))
    register_delivery(_protect(delivery, permission), name, info)


def directDelivery(_context, mailer, permission=None, name='Mail'):
    """Handle ``<mail:directDelivery>``."""
    # The mailer is looked up when the action runs, after the mailers'.
    _context.action(
        discriminator=('utility', IMailDelivery, name),
        callable=register_direct_delivery,
        args=(mailer, permission, name, _context.info),
        order=DELIVERY_ORDER)


def _check_metrics(queue_path, processor_thread):
    """At parse time: metrics="true" needs the processor thread and the
    extra, else a ConfigurationError saying which."""
    if not processor_thread:
        raise ConfigurationError(
            f'queue {queue_name(queue_path)!r}: metrics="true" counts what'
            f' its processor thread does, and processorThread is false (a'
            f' zope-sendmail daemon keeps its own: --metrics-port)')
    try:
        import prometheus_client  # noqa: F401 (only whether it imports)
    except ImportError:
        raise ConfigurationError(
            f'queue {queue_name(queue_path)!r}: metrics="true" needs'
            f' prometheus_client: pip install \'zope.sendmail[metrics]\'')\
            from None


def queuedDelivery(_context, mailer, queuePath=None, queue=None,
                   permission=None, name='Mail', processorThread=True,
                   metrics=False, **settings):
    """Handle ``<mail:queuedDelivery>``; *settings* are the processor's,
    by ZCML attribute name."""
    if (queuePath is None) == (queue is None):
        raise ConfigurationError(
            'queuedDelivery names its queue with exactly one of queuePath'
            ' (a Maildir directory) and queue (a PostgreSQL URL): '
            + ('both were given' if queue is not None
               else 'neither was given'))
    queuePath = queuePath if queue is None else queue
    if metrics:
        _check_metrics(queuePath, processorThread)
    try:
        thread_options = processor_arguments(
            {option.name: settings.get(zcml_name(option.name))
             for option in PROCESSOR_OPTIONS}, queuePath)
    except ValueError as e:
        raise ConfigurationError(f'queue {queue_name(queuePath)!r}: {e}')

    shared_group = thread_options['shared_group']
    delivery = _protect(QueuedMailDelivery(queuePath,
                                           shared_group=shared_group),
                        permission)
    _context.action(
        discriminator=None, callable=lookup_mailer, args=(mailer,),
        order=DELIVERY_ORDER)
    _context.action(
        discriminator=None, callable=prepare_queue,
        args=(queuePath, shared_group), order=DELIVERY_ORDER)
    _context.action(
        discriminator=('utility', IMailDelivery, name),
        callable=register_delivery, args=(delivery, name, _context.info),
        order=DELIVERY_ORDER)
    if processorThread:
        # Registered only, in the registry in force when the action runs:
        # the thread starts with the application (see
        # zope.sendmail.startup), never while ZCML is loaded.
        _context.action(
            discriminator=None, callable=startup.register_queue,
            args=(queuePath, mailer),
            kw=dict(thread_options, metrics=bool(metrics)),
            order=DELIVERY_ORDER)
        # The subscribers that start it, whatever the site includes (7.3's
        # directive started its thread itself); registered only once.
        _context.action(
            discriminator=None, callable=startup.register_subscribers,
            args=(_context.info,), order=DELIVERY_ORDER)
