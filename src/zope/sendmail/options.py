"""The settings of a queue processor and of its mailer, defined once.

This module owns every setting that both the ``zope-sendmail`` program and
the ``<mail:queuedDelivery>`` ZCML directive accept.  The mailer's settings
are the fields of `ISMTPMailer`; the processor's are the fields of
`IQueueProcessorOptions` below.  `OPTIONS` lists them all as `Option`
records, each knowing how it is read from text (booleans exactly: true,
false, yes, no, on, off, 1, 0), its command line flag and its INI key; ZCML
takes the same fields under camelCase attribute names (`zcml_name`).
`processor_arguments` turns settings into the keyword arguments of
`QueueProcessorThread`, for both.
"""
import math

from zope.interface import Interface
from zope.schema import Bool
from zope.schema import Choice
from zope.schema import Float
from zope.schema import Int
from zope.schema import ValidationError
from zope.schema import getFieldsInOrder
from zope.schema.interfaces import InvalidValue
from zope.schema.interfaces import TooBig
from zope.schema.interfaces import TooSmall

from zope.sendmail.interfaces import ISMTPMailer
from zope.sendmail.processing.retry import RetryPolicy
from zope.sendmail.stores import check_options


#: The spellings of a boolean setting; anything else is an error.
BOOLEANS = {'true': True, 'yes': True, 'on': True, '1': True,
            'false': False, 'no': False, 'off': False, '0': False}

#: Mailer settings that name files (relative to the ZCML file in ZCML).
PATH_OPTIONS = frozenset(['tls_ca_file'])

#: Mailer settings that name Python objects (resolved like ZCML's
#: GlobalObject: relative to the ZCML file's package in ZCML).
OBJECT_OPTIONS = frozenset(['oauth2_token'])

#: Settings never to be shown, not even in an error about them.
SECRET_OPTIONS = frozenset(['password'])


def parse_bool(text):
    """*text* as a boolean: one of `BOOLEANS`, in any case."""
    try:
        return BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f'{text!r} is not a boolean: use true or false'
                         f' (or yes/no, on/off, 1/0)') from None


class Seconds(Float):
    """A duration in seconds: a finite number (zope.schema's Float takes
    "nan" and "inf", which would make a processor spin or never wake)."""

    def _validate(self, value):
        super()._validate(value)
        if not math.isfinite(value):
            raise InvalidValue(f'{value!r} is not a finite number of'
                               f' seconds').with_field_and_value(self, value)


class Rate(Float):
    """A number of messages a second: positive and finite."""

    def _validate(self, value):
        super()._validate(value)
        if not (math.isfinite(value) and value > 0):
            raise InvalidValue(f'{value!r} is not a positive number of'
                               f' messages a second'
                               ).with_field_and_value(self, value)


class IQueueProcessorOptions(Interface):
    """How a queue processor paces its work (see `QueueProcessorThread`,
    `QueueProcessor` and `RetryPolicy`)."""

    interval = Seconds(
        title="Interval", default=3.0, min=0.001, required=False,
        description="Seconds between two looks at the queue.")
    retry_first = Seconds(
        title="First retry", min=0.001, required=False,
        description="Seconds to wait after a temporary failure before the"
                    " first retry (default: 10 intervals).")
    retry_factor = Seconds(
        title="Retry factor", default=2.0, min=1.0, required=False,
        description="How much longer each following wait is.")
    retry_cap = Seconds(
        title="Longest retry wait", min=0.001, required=False,
        description="Seconds never exceeded between two attempts"
                    " (default: 1200 intervals).")
    lifetime = Seconds(
        title="Lifetime", default=5 * 24 * 60 * 60.0, min=0.001,
        required=False,
        description="Seconds after which a message still failing is given"
                    " up and set aside as rejected.")
    connections = Int(
        title="Connections", default=8, min=1, required=False,
        description="Most SMTP connections used at once (fewer while the"
                    " backlog is small or the relay refuses more).")
    max_rate = Rate(
        title="Most messages a second", required=False,
        description="Never send faster than this many messages a second,"
                    " over all connections (e.g. 14 for an Amazon SES"
                    " account, 0.5 for Exchange Online's 30 a minute);"
                    " no limit when unset.")
    max_messages = Int(
        title="Messages per connection", default=100, min=1, required=False,
        description="Most messages sent over one connection.")
    lease = Choice(
        title="Processor lease", values=('auto', 'on', 'off'),
        default='auto', required=False,
        description="Send only while holding the queue's processor lease,"
                    " so that one processor at a time sends from a shared"
                    " queue: auto (on a network file system), on or off.")
    lease_timeout = Seconds(
        title="Lease takeover bound", default=120.0, min=0.001,
        required=False,
        description="Seconds a standby waits for a lease that is not"
                    " renewed before taking it over; longer than the NFS"
                    " server's lease.  On a PostgreSQL queue: how long the"
                    " claims of a processor cut off from the database"
                    " hold.")
    lease_renew = Seconds(
        title="Lease renewal interval", default=10.0, min=0.001,
        required=False,
        description="Seconds between two renewals of the lease (of a"
                    " PostgreSQL queue's claims too).")
    lease_margin = Seconds(
        title="Lease margin", default=20.0, min=0.0, required=False,
        description="Seconds kept for a message in flight: a holder that"
                    " cannot renew starts no message after (timeout -"
                    " margin) / 2 seconds.")
    shared_group = Bool(
        title="Shared group", default=False, required=False,
        description="Accept a queue directory that its group may write to,"
                    " for users of one group sharing the queue (never one"
                    " that every user may write to).")


def parse_relay(text):
    """*text*, ``HOST:PORT``, ``[IPv6]:PORT`` or ``HOST`` alone, as
    ``(host, port)`` (port None when not given); a ValueError saying what
    is wrong."""
    text = text.strip()
    host, port = text, None
    if text.startswith('['):
        host, bracket, rest = text[1:].partition(']')
        if not bracket or rest and not rest.startswith(':'):
            raise ValueError(f'{text!r}: not HOST:PORT')
        port = rest[1:] if rest else None
    elif text.count(':') == 1:
        host, port = text.split(':')
    if not host or any(c.isspace() or not c.isprintable() for c in host):
        raise ValueError(f'{text!r}: not HOST:PORT')
    if port is not None:
        if not (port.isascii() and port.isdigit() and
                1 <= int(port) <= 65535):
            raise ValueError(f'{text!r}: the port must be a number from 1'
                             f' to 65535')
        port = int(port)
    return host, port


def parse_relays(text):
    """*text*, relays separated by spaces or commas (see `parse_relay`),
    as a list of ``(host, port)``."""
    return [parse_relay(word) for word in text.replace(',', ' ').split()]


def zcml_name(name):
    """The ZCML attribute of the processor setting *name*: ``retry_first``
    is ``retryFirst``, as zope.sendmail's other ZCML attributes are."""
    head, *rest = name.split('_')
    return head + ''.join(word.capitalize() for word in rest)


class Option:
    """One setting: its *name* (the keyword argument and INI key), its
    zope.schema *field* and its *kind*, ``'mailer'`` or ``'processor'``."""

    def __init__(self, name, field, kind):
        self.name = name
        self.field = field
        self.kind = kind
        self.secret = name in SECRET_OPTIONS
        self.is_bool = isinstance(field, Bool)
        dashed = name.replace('_', '-')
        # A boolean that is on by default is turned off by its flag.
        self.flag = ('--no-' if self.is_bool and field.default else '--') \
            + dashed

    def __repr__(self):
        return f'<Option {self.name} ({self.kind})>'

    @property
    def default(self):
        return self.field.default

    def parse(self, text):
        """*text* (a command line argument or INI value) as this setting's
        value; a ValueError saying what is wrong, without repeating the
        value of a secret."""
        if self.is_bool:
            return parse_bool(text)
        try:
            value = self.field.fromUnicode(text if self.secret
                                           else text.strip())
        except ValidationError as e:
            raise ValueError(describe(e, text, shown=not self.secret)) \
                from None
        if isinstance(value, float) and not math.isfinite(value):
            # ISMTPMailer's timeout is a plain Float, which takes "nan".
            raise ValueError(f'{text.strip()!r}: not a finite number')
        return value


def describe(error, text, shown=True):
    """A `ValidationError` of zope.schema about *text* as a short
    sentence, quoting *text* only when *shown*."""
    if '\n' in text:
        return 'must be one line'
    shown = f'{text!r}: ' if shown else ''
    if isinstance(error, TooSmall):
        return f'{shown}must be at least {error.bound}'
    if isinstance(error, TooBig):
        return f'{shown}must be at most {error.bound}'
    if isinstance(error, Int._validation_error):
        return f'{shown}not a whole number'
    if isinstance(error, Float._validation_error):
        return f'{shown}not a number'
    if isinstance(error, InvalidValue) and error.args:
        return str(error.args[0])
    return f'{shown}{error.doc()}'


MAILER_OPTIONS = tuple(Option(name, field, 'mailer')
                       for name, field in getFieldsInOrder(ISMTPMailer))
PROCESSOR_OPTIONS = tuple(
    Option(name, field, 'processor')
    for name, field in getFieldsInOrder(IQueueProcessorOptions))
OPTIONS = MAILER_OPTIONS + PROCESSOR_OPTIONS


def mailer_arguments(settings):
    """The keyword arguments of `SMTPMailer` among *settings* (a dict by
    option name); missing ones take their field's default."""
    return {option.name: settings.get(option.name, option.default)
            for option in MAILER_OPTIONS}


def has_credentials(settings):
    """Whether *settings* give a password or an OAuth 2.0 token source."""
    return any(settings.get(name) is not None for name in
               ('password', 'oauth2_token', 'oauth2_token_command'))


def processor_arguments(settings, queue=None):
    """The keyword arguments of `QueueProcessorThread` for *settings* (a
    dict by option name; missing or None ones take their defaults).

    Raises ValueError for settings that contradict each other, or that the
    store of *queue* (a path or URL; None: the Maildir's rules) cannot
    work with.
    """
    def get(name):
        value = settings.get(name)
        return IQueueProcessorOptions[name].default if value is None \
            else value

    interval = get('interval')
    retry = RetryPolicy(interval, first=get('retry_first'),
                        factor=get('retry_factor'), cap=get('retry_cap'),
                        lifetime=get('lifetime'))
    check_options(queue, lease=get('lease'),
                  lease_timeout=get('lease_timeout'),
                  lease_renew=get('lease_renew'),
                  lease_margin=get('lease_margin'))
    return {'interval': interval, 'retry': retry,
            'connections': get('connections'), 'max_rate': get('max_rate'),
            'max_messages': get('max_messages'), 'lease': get('lease'),
            'lease_timeout': get('lease_timeout'),
            'lease_renew': get('lease_renew'),
            'lease_margin': get('lease_margin'),
            'shared_group': get('shared_group')}
