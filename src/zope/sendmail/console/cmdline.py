"""The ``zope-sendmail`` command line, merged with its INI file.

This module owns the program's argument parser (its mailer and processor
options derived from `zope.sendmail.options`, grouped for ``--help``, with
the exit status table) and `read_settings`, which merges the defaults, the
INI file (`inifile`) and the command line, which wins, into
one `Settings`.  The TLS mode and the password are one setting each however
they are spelled, so naming either on the command line replaces all of the
INI file's spellings of it.  Every problem found is a `UsageError` of one
line naming the option at fault; a password is never part of one.
"""
import argparse
import os
import sys

from zope.sendmail.console.inifile import INI_KEYS
from zope.sendmail.console.inifile import INI_SECTION
from zope.sendmail.console.inifile import METRICS_KEYS
from zope.sendmail.console.inifile import UsageError
from zope.sendmail.console.inifile import read_ini
from zope.sendmail.options import OPTIONS
from zope.sendmail.options import PATH_OPTIONS
from zope.sendmail.options import has_credentials
from zope.sendmail.options import parse_relay
from zope.sendmail.console.secretfiles import read_password_file
from zope.sendmail.console.inifile import queue_url_has_password
from zope.sendmail.monitoring.check import Threshold
from zope.sendmail.version import version


PROG = 'zope-sendmail'
TLS_MODE = frozenset(['no_tls', 'force_tls', 'implicit_tls'])
PASSWORD_SOURCES = frozenset(['password', 'password_file', 'password_env'])
MODES = ('daemon', 'status', 'list', 'requeue_rejected', 'purge_rejected',
         'create_schema', 'check')
#: How long --check and --status --json wait for the queue by default.
DEFAULT_TIMEOUT = 10.0

EXIT_STATUS = """\
exit status:
  0   all the mail due was sent (or there was none); an operation succeeded
  1   messages were refused for good and set aside as rejected, or an
      unexpected error occurred
  2   usage: a bad option, INI file or queue; nothing was done
  75  messages wait in the queue for a later attempt (deferred, or the relay
      could not be reached, or the run was interrupted)
  78  the relay refused the mailer's settings (authentication, TLS
      required, certificate); no message is blamed
--check exits as a monitoring plugin does instead: 0 OK, 1 WARNING,
2 CRITICAL (also for a queue that cannot be read), 3 UNKNOWN (no answer
within --check-timeout, or a bad option).
"""

_DESCRIPTION = """\
Send the mail queued by zope.sendmail's queued delivery in QUEUE, a Maildir
directory or a PostgreSQL URL (postgresql://user@host/db?queue=NAME): once,
until nothing due is left (the default), or as a daemon (--daemon) until
SIGTERM or SIGINT.  --status, --list, --requeue-rejected and
--purge-rejected inspect and tidy the queue instead; they are safe while a
processor runs.  A URL's password is better kept in libpq's password file
(~/.pgpass) or service file: other users see command lines."""

# The option groups of --help, in their order.
_GROUPS = {
    'relay': ('SMTP relay', None),
    'tls': ('TLS', 'STARTTLS is used whenever the relay offers it, unless'
                   ' one of the first\nthree options says otherwise.'),
    'auth': ('authentication', None),
    'processor': ('queue processing', None),
}
_METAVARS = {'hostname': 'HOST', 'port': 'PORT', 'username': 'USER',
             'password': 'PASSWORD', 'tls_ca_file': 'FILE',
             'retry_factor': 'FACTOR', 'connections': 'N', 'max_messages': 'N',
             'oauth2_token': 'DOTTED_NAME', 'oauth2_token_command': 'COMMAND',
             'lease': 'MODE', 'max_rate': 'RATE'}


class HelpShown(Exception):
    """The parser printed help and wants the program to exit."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class Settings:
    """What the program is to do: ``mode`` (``'once'``, or one of `MODES`),
    ``purge_age``, ``verbosity`` (-1, 0, 1), ``queue_path``, ``config`` (the
    INI file's name or None), ``values``, the mailer and processor
    settings by option name, and ``warnings`` to log once logging is set;
    ``thresholds`` of ``--check`` (`Threshold` objects by ``max_age``,
    ``max_rejected``, ``max_deferred``), ``json`` (``--status --json``)
    and ``timeout``, how long both wait for the queue; ``metrics``, where
    the metrics go (``port``, ``address``, ``file``: None when not).
    """

    def __init__(self, mode, purge_age, verbosity, queue_path, config,
                 values, warnings=(), thresholds=None,
                 timeout=DEFAULT_TIMEOUT, json=False, metrics=None):
        self.mode = mode
        self.purge_age = purge_age
        self.verbosity = verbosity
        self.queue_path = queue_path
        self.config = config
        self.values = values
        self.warnings = list(warnings)
        self.thresholds = dict(thresholds or {})
        self.timeout = timeout
        self.json = json
        self.metrics = dict(metrics or dict.fromkeys(('port', 'address',
                                                      'file')))


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage and exits; the program wants one line and
    # to decide for itself how to exit.

    def error(self, message):
        raise UsageError(message)

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise HelpShown(status)


def _converter(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return convert


def _group_of(option):
    if option.kind == 'processor':
        return 'processor'
    if 'tls' in option.name:
        return 'tls'
    auth = option.name in ('username', 'password') or 'oauth2' in option.name
    return 'auth' if auth else 'relay'


# --no-X help where the field's description (of the setting on) reads wrong.
_OFF_HELP = {'tls_verify': "Do not check the relay's certificate and host"
             " name (checked by default).  This exposes the password and the"
             " mail to anyone who can intercept the connection: use it only"
             " for a relay on the same host."}


def _help(option):
    field = option.field
    text = field.description
    if option.is_bool and field.default:
        text = _OFF_HELP.get(option.name) or (
            text + ' On by default; this option turns it off.')
    elif field.default is not None and not option.is_bool:
        text += f' Default: {field.default:g}.' if isinstance(
            field.default, float) else f' Default: {field.default}.'
    if option.secret:
        text += (' Other users see it in ps: prefer --password-file or'
                 ' --password-env.')
    return text.replace('%', '%%')


def _add(group, option):
    if option.is_bool:
        group.add_argument(option.flag, dest=option.name,
                           action='store_const', const=not option.default,
                           help=_help(option))
    else:
        group.add_argument(option.flag, dest=option.name,
                           type=_converter(option.parse),
                           metavar=_METAVARS.get(option.name, 'SECS'),
                           help=_help(option))


def build_parser(parse_age):
    """The argument parser; *parse_age* reads the AGE of
    ``--purge-rejected``."""
    parser = _Parser(
        prog=PROG, description=_DESCRIPTION, epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'maildir', nargs='?', metavar='QUEUE',
        help='The queue: a Maildir directory, or a PostgreSQL URL.'
             '  Default: queue_path of the INI file.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {version()}')
    modes = parser.add_argument_group(
        'what to do instead of sending what is due once').\
        add_mutually_exclusive_group()
    modes.add_argument(
        '--daemon', action='store_true',
        help='Keep sending, looking at the queue every --interval seconds,'
             ' until SIGTERM or SIGINT; then finish the messages being sent'
             ' and exit.')
    modes.add_argument(
        '--status', action='store_true',
        help='Show how many messages are queued, deferred and rejected.')
    modes.add_argument(
        '--list', action='store_true',
        help='List the messages: state, sender, recipients, attempts, last'
             ' error or reason.')
    modes.add_argument(
        '--requeue-rejected', action='store_true',
        help='Put the rejected messages back into the queue as new ones.')
    modes.add_argument(
        '--purge-rejected', metavar='AGE', type=_converter(parse_age),
        help='Delete the messages rejected at least AGE ago (seconds, or'
             ' with a unit: 30m, 12h, 7d, 2w).')
    modes.add_argument(
        '--create-schema', action='store_true',
        help='Create the tables of a PostgreSQL queue (QUEUE a URL) in its'
             ' database, if missing, and exit.  Processors and deliveries'
             ' create them on first use too; this lets a site create them'
             ' ahead, as a user allowed to.')
    # Added group by group: argparse garbles the usage line when two
    # mutually exclusive groups (TLS modes, password sources) are adjacent.
    for key, (title, text) in _GROUPS.items():
        group = parser.add_argument_group(title, text)
        if key in ('tls', 'auth'):
            exclusive = group.add_mutually_exclusive_group()
        for option in OPTIONS:
            if _group_of(option) != key:
                continue
            _add(exclusive if option.name in TLS_MODE | {'password'}
                 else group, option)
            if option.name == 'port':
                group.add_argument(
                    '--fallback-relay', dest='fallback_relays',
                    action='append', metavar='HOST:PORT',
                    type=_converter(parse_relay),
                    help='Another relay, used while the relay (and the'
                         ' fallback relays before this one) cannot be'
                         ' reached, refuses the login or the TLS required,'
                         ' or says its quota is used up; tried again after'
                         ' 60 s.  Repeatable; the same TLS and login'
                         ' options apply (the same credentials go to it).'
                         '  Without a port, the relay\'s port.  INI:'
                         ' fallback_relays = HOST:PORT ...')
            if option.name == 'password':
                exclusive.add_argument(
                    '--password-file', metavar='FILE',
                    help='Read the password from the first line of FILE.')
                exclusive.add_argument(
                    '--password-env', metavar='VAR',
                    help='Take the password from the environment variable'
                         ' VAR.')
    modes.add_argument(
        '--check', action='store_true',
        help='Check the queue as a monitoring plugin (Nagios, Icinga,'
             ' Sensu, Zabbix): print one line, the state, what is wrong'
             ' and performance data, and exit 0 OK, 1 WARNING, 2 CRITICAL'
             ' or 3 UNKNOWN.  A queue that cannot be read is CRITICAL; one'
             ' that does not answer within --check-timeout is UNKNOWN.')
    check = parser.add_argument_group(
        'thresholds of --check', 'W warns above W; W,C also turns CRITICAL'
        ' above C; ,C is critical only.')
    check.add_argument(
        '--max-age', metavar='W[,C]',
        type=_converter(lambda text: Threshold.parse(text, parse_age)),
        help='The age of the oldest message not set aside (seconds, or'
             ' with a unit: 10m,1h).')
    check.add_argument(
        '--max-rejected', metavar='W[,C]',
        type=_converter(lambda text: Threshold.parse(text, _count)),
        help='The messages set aside as rejected.')
    check.add_argument(
        '--max-deferred', metavar='W[,C]',
        type=_converter(lambda text: Threshold.parse(text, _count)),
        help='The messages waiting for a later attempt.')
    check.add_argument(
        '--check-timeout', metavar='SECS', type=_converter(_timeout),
        help=f'How long --check and --status --json wait for the queue (a'
             f' hung network mount, a database that does not answer);'
             f' --timeout is the relay\'s.'
             f'  Default: {DEFAULT_TIMEOUT:g}.')
    check.add_argument(
        '--json', action='store_true',
        help='With --status: the same facts as one JSON object, for'
             ' scripts (its keys are documented in operating.txt).')
    metrics = parser.add_argument_group(
        'metrics for Prometheus (the extra zope.sendmail[metrics])')
    metrics.add_argument(
        '--metrics-port', metavar='PORT', type=_converter(_port),
        help='With --daemon: serve the metrics over HTTP on PORT'
             ' (http://127.0.0.1:PORT/metrics).')
    metrics.add_argument(
        '--metrics-address', metavar='ADDR',
        help='The address --metrics-port listens on.  Default: 127.0.0.1'
             ' (this host only).')
    metrics.add_argument(
        '--metrics-file', metavar='PATH',
        help='Write the metrics to PATH (a .prom file in node_exporter\'s'
             ' textfile directory), atomically: at the end of a run, and'
             ' every --interval seconds with --daemon.')
    config = parser.add_argument_group('configuration file')
    config.add_argument(
        '--config', metavar='INIFILE',
        help=f'Read settings from the [{INI_SECTION}] section of INIFILE'
             f' ("-": standard input).  Its keys are the long options'
             f' written with "_" (tls_verify = false for --no-tls-verify),'
             f' plus queue_path, password_file and password_env.  Booleans'
             f' are true/false, yes/no, on/off or 1/0; an empty value'
             f' leaves the default.  The command line wins over the file.')
    output = parser.add_argument_group('output').add_mutually_exclusive_group()
    output.add_argument('-v', '--verbose', action='store_true',
                        help='Log more: each message sent (and debugging'
                             ' output with --daemon).')
    output.add_argument('-q', '--quiet', action='store_true',
                        help='Log errors only.')
    return parser


def read_settings(argv, parse_age, stdin=None, environ=None):
    """Parse *argv* (without the program name) and the INI file it names
    into `Settings`; raise `UsageError` or `HelpShown`."""
    args = build_parser(parse_age).parse_args(argv)
    warnings = []
    cli = {key: getattr(args, key) for key in INI_KEYS
           if getattr(args, key, None) is not None}
    if args.maildir is not None:
        cli['queue_path'] = args.maildir
        if queue_url_has_password(args.maildir):
            warnings.append(
                'the queue URL on the command line holds a password, which'
                ' other users see in ps: keep it in libpq\'s password file'
                ' (~/.pgpass) or service file instead')
    ini, config = {}, args.config
    if config is not None:
        ini = read_ini(config, stdin if stdin is not None else sys.stdin,
                       warnings)
        config = '<stdin>' if config == '-' else config
    for family in (TLS_MODE, PASSWORD_SOURCES):
        if family & cli.keys():
            for key in family:
                ini.pop(key, None)
    given = [key for key in sorted(PASSWORD_SOURCES) if key in ini]
    if len(given) > 1:
        raise UsageError(f'{config}: [{INI_SECTION}] has {" and ".join(given)}'
                         f': give the password one way only')
    values = {option.name: option.default for option in OPTIONS}
    values.update(ini)
    values.update(cli)
    queue_path = values.pop('queue_path', None)
    if not queue_path:
        raise UsageError(f'no queue: name it (QUEUE), or set'
                         f' queue_path in the [{INI_SECTION}] section of'
                         f' the --config file')
    # An AGE of 0 is false, and still asks for a purge.
    mode = next((m for m in MODES if getattr(args, m) is True), 'once') \
        if args.purge_rejected is None else 'purge_rejected'
    if mode in ('once', 'daemon'):
        _check_mailer_settings(values, environ or os.environ, warnings)
    else:
        # An operator looking at the queue needs no relay: files only the
        # processor's user may read are left alone.
        values.pop('password_file', None)
        values.pop('password_env', None)
    verbosity = 1 if args.verbose else -1 if args.quiet else 0
    thresholds = {name: getattr(args, name) for name in
                  ('max_age', 'max_rejected', 'max_deferred')
                  if getattr(args, name) is not None}
    if thresholds and mode != 'check':
        raise UsageError(f'--{next(iter(thresholds)).replace("_", "-")} is'
                         f' a threshold of --check')
    if args.json and mode != 'status':
        raise UsageError('--json goes with --status')
    if args.check_timeout is not None and mode != 'check' and not args.json:
        raise UsageError('--check-timeout is for --check and --status'
                         ' --json')
    timeout = DEFAULT_TIMEOUT if args.check_timeout is None \
        else args.check_timeout
    metrics = _metrics(values, mode, config, cli)
    return Settings(mode, args.purge_rejected, verbosity, queue_path, config,
                    values, warnings, thresholds, timeout, args.json,
                    metrics)


def _metrics(values, mode, config, cli):
    """Where the metrics go, taken out of *values*: the command line's or
    the INI file's (read as text) ``metrics_*`` keys.  An INI file serves
    every mode: what a mode does not use is left unused, unless given on
    the command line (*cli*), which is then refused."""
    metrics = {key[len('metrics_'):]: values.pop(key, None)
               for key in METRICS_KEYS}
    if mode != 'daemon' and 'metrics_port' not in cli:
        metrics['port'] = metrics['address'] = None
    if mode not in ('once', 'daemon') and 'metrics_file' not in cli:
        metrics['file'] = None
    port = metrics['port']
    if isinstance(port, str):  # from the INI file
        try:
            metrics['port'] = port = _port(port)
        except ValueError as e:
            raise UsageError(f'{config}: [{INI_SECTION}] metrics_port: {e}')\
                from None
    if metrics['address'] is not None and port is None:
        raise UsageError('--metrics-address goes with --metrics-port')
    if port is not None and mode != 'daemon':
        raise UsageError('--metrics-port is for --daemon (a run that ends'
                         ' writes --metrics-file)')
    if metrics['file'] is not None and mode not in ('once', 'daemon'):
        raise UsageError('--metrics-file is for sending runs (once or'
                         ' --daemon)')
    return metrics


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f'{text!r} is no port: give 0 to 65535')
    return port


def _count(text):
    return int(text)


def _timeout(text):
    value = float(text)
    if not 0 < value <= 3600:  # also refuses nan
        raise ValueError(f'{text!r}: give seconds, more than 0 and at most'
                         f' 3600')
    return value


def _check_mailer_settings(values, environ, warnings):
    values['password'] = _password(values, environ, warnings)
    if (values['username'] is None) != (not has_credentials(values)):
        raise UsageError('username and password go together: give both or'
                         ' neither (or a username and an OAuth 2.0 token)')
    for name in PATH_OPTIONS:
        path = values.get(name)
        if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise UsageError(f'cannot read {path!r}, the file of'
                             f' {name.replace("_", "-")}')


def _password(values, environ, warnings):
    path = values.pop('password_file', None)
    variable = values.pop('password_env', None)
    if path:
        try:
            password, warning = read_password_file(path)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if warning:
            warnings.append(warning)
        return password
    if variable:
        password = environ.get(variable)
        if not password:
            raise UsageError(f'the environment variable {variable} (the'
                             f' password) is not set or empty')
        return password
    return values.get('password')
