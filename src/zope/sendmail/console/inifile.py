"""The ``[app:zope-sendmail]`` section of an INI file.

This module owns how the ``zope-sendmail`` program reads its INI file: the
section's keys (`INI_KEYS`: one per option of `zope.sendmail.options`, named
like it, plus the program's own), read as zope.sendmail 7.3 read them
(``configparser`` with interpolation, so ``%`` is written ``%%``, and
``[DEFAULT]`` applying), but exactly: an unknown key in the section, a value
that does not parse or a missing section is a `UsageError` naming the file
and the key, never showing a password (nor a ``queue_path`` URL, which
may hold one).  An empty value leaves the default.  A file holding a
password (an option's, or in the queue's URL) that others may read is
read, with a warning.
"""
import configparser
import difflib
import os

from zope.sendmail.options import OPTIONS
from zope.sendmail.options import parse_relays
from zope.sendmail.console.secretfiles import exposure
from zope.sendmail.interfaces import QueueError
from zope.sendmail.stores import queue_url


INI_SECTION = 'app:zope-sendmail'
#: The program's keys of where the metrics go (``--metrics-port`` ...).
METRICS_KEYS = ('metrics_port', 'metrics_address', 'metrics_file')
PROGRAM_KEYS = ('queue_path', 'password_file', 'password_env',
                'fallback_relays') + METRICS_KEYS
INI_KEYS = tuple(option.name for option in OPTIONS) + PROGRAM_KEYS


class UsageError(Exception):
    """What is wrong with the command line, the INI file or the queue."""


def queue_url_has_password(text):
    """Whether *text*, a queue, is a URL holding a password."""
    try:
        url = queue_url(text)
    except QueueError:
        return True  # not a usable URL: it may hold one
    return url is not None and url.has_password


def _one_line(error):
    return ' '.join(str(error).split())


def read_ini(path, stdin, warnings=None):
    """The settings of the ``[app:zope-sendmail]`` section of the INI file
    *path* (``-``: *stdin*), by key; only the keys it sets.  A file holding
    a secret (a password) that its group or others may read adds a warning
    to the list *warnings*."""
    name = '<stdin>' if path == '-' else path
    status = None
    try:
        if path == '-':
            text = stdin.read()
        else:
            with open(path, encoding='utf-8') as f:
                status = os.fstat(f.fileno())  # of the file that is read
                text = f.read()
    except OSError as e:
        raise UsageError(f'--config: cannot read {path!r}: {e.strerror}') \
            from None
    except UnicodeDecodeError:
        raise UsageError(f'{name}: not UTF-8 text') from None
    # The second parser sees the section's own keys, which alone must all
    # be known: [DEFAULT] may serve the other apps of a PasteDeploy file.
    parser = configparser.ConfigParser()
    own = configparser.ConfigParser(default_section='\0', interpolation=None)
    try:
        parser.read_string(text, source=name)
        own.read_string(text, source=name)
    except configparser.ParsingError as e:
        if isinstance(e, configparser.MissingSectionHeaderError):
            lineno, line = e.lineno, e.line
        else:
            lineno, line = e.errors[0]
        raise UsageError(f'{name}, line {lineno}: cannot parse'
                         f' {line.strip()!r}') from None
    except configparser.Error as e:
        raise UsageError(f'{name}: {_one_line(e.message)}') from None
    if not parser.has_section(INI_SECTION):
        raise UsageError(f'{name}: no [{INI_SECTION}] section')
    for key in own[INI_SECTION]:
        if key not in INI_KEYS:
            close = difflib.get_close_matches(key, INI_KEYS, 1)
            hint = f'; did you mean {close[0]!r}?' if close else \
                f'; the keys are: {", ".join(INI_KEYS)}'
            raise UsageError(f'{name}: unknown key {key!r} in'
                             f' [{INI_SECTION}]{hint}')
    options = {option.name: option for option in OPTIONS}
    values = {}
    for key in INI_KEYS:
        if not parser.has_option(INI_SECTION, key):
            continue
        where = f'{name}: [{INI_SECTION}] {key}'
        option = options.get(key)
        try:
            text = parser.get(INI_SECTION, key)
        except configparser.InterpolationError as e:
            # The message quotes the value: a secret's, or a URL that
            # may hold one, is not shown.
            reason = 'a "%" must be written "%%"' if key == 'queue_path' \
                or option and option.secret else _one_line(e.message)
            raise UsageError(f'{where}: {reason}') from None
        if not text.strip():
            continue  # an empty value leaves the default
        if key == 'fallback_relays':
            try:
                values[key] = parse_relays(text)
            except ValueError as e:
                raise UsageError(f'{where}: {e}') from None
            continue
        if option is None:
            values[key] = text.strip()
            continue
        try:
            values[key] = option.parse(text)
        except ValueError as e:
            raise UsageError(f'{where}: {e}') from None
    if status is not None and warnings is not None and (any(
            options[key].secret for key in values if key in options)
            or queue_url_has_password(values.get('queue_path'))):
        warning = exposure(path, status, 'holds a password')
        if warning:
            warnings.append(warning)
    return values
