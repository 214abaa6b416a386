"""``zope-sendmail --check``: a queue judged as a monitoring plugin.

The Nagios plugin convention, which Icinga, Naemon, Sensu, Zabbix and
``check_mailq`` share: the exit status is the state (`OK` 0, `WARNING` 1,
`CRITICAL` 2, `UNKNOWN` 3); the output is one line, the state's name, what
is wrong (or how the queue is), then ``|`` and the performance data in the
Monitoring Plugins format, ``'label'=value[UOM];warn;crit;min;max``.

A `Threshold` is ``W`` or ``W,C``: one value is a warning threshold only,
as in ``check_mailq -w``; ``W,C`` adds a critical one (``,C`` a critical
one only).  A value above a threshold raises the state (the Monitoring
Plugins' ``@``-less range ``0..W``).  How a queue that cannot be judged is
reported: a queue that says what is wrong with it (missing, refused, no
queue, its database refusing) is `CRITICAL`, as no mail moves through it;
one that does not answer in time is `UNKNOWN`, as nothing is known of it.
Every text is escaped, without ``|`` (which would end it), and never holds
a password: the queue is shown by its name.
"""
from zope.interface import implementer

from zope.sendmail.display import printable
from zope.sendmail.interfaces import IThreshold


OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: 'OK', WARNING: 'WARNING', CRITICAL: 'CRITICAL',
               UNKNOWN: 'UNKNOWN'}

# A reason is a line of a monitoring system's screen, not a page.
_MAX_TEXT = 300


@implementer(IThreshold)
class Threshold:
    """A warning and a critical bound (None: none) on one value."""

    def __init__(self, warning=None, critical=None):
        self.warning = warning
        self.critical = critical

    @classmethod
    def parse(cls, text, parse_value):
        """``W``, ``W,C`` or ``,C``; *parse_value* reads each one (raising
        ValueError)."""
        warning, comma, critical = text.partition(',')
        if ',' in critical or not (warning.strip() or critical.strip()):
            raise ValueError(f'{text!r} is no threshold: give W or W,C')
        values = [parse_value(part) if part.strip() else None
                  for part in (warning, critical)]
        if any(value is not None and value < 0 for value in values):
            raise ValueError(f'{text!r}: a threshold is not negative')
        if None not in values and values[1] < values[0]:
            raise ValueError(f'{text!r}: the critical threshold is below'
                             f' the warning one')
        return cls(*values)

    def state(self, value):
        """`OK`, `WARNING` or `CRITICAL` for *value*."""
        if value is None:
            return OK
        if self.critical is not None and value > self.critical:
            return CRITICAL
        if self.warning is not None and value > self.warning:
            return WARNING
        return OK

    def bound(self, state):
        return self.critical if state == CRITICAL else self.warning

    def perfdata(self):
        return ';'.join('' if value is None else f'{value:g}'
                        for value in (self.warning, self.critical))

    def __repr__(self):
        return f'<Threshold {self.warning},{self.critical}>'


_NONE = Threshold()


def escaped(text):
    text = printable(text).replace('|', '/')
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + '...'


def _age(seconds):
    # Imported here: the console's module is the one that formats ages.
    from zope.sendmail.console.queueops import format_age
    return format_age(seconds)


def judge(facts, max_age=None, max_rejected=None, max_deferred=None):
    """The state of the queue of *facts* (`zope.sendmail.monitoring.facts`)
    by the `Threshold` objects given, and its line:
    ``(state, 'STATE - text | perfdata')``."""
    max_age = max_age or _NONE
    max_rejected = max_rejected or _NONE
    max_deferred = max_deferred or _NONE
    counts, age = facts['counts'], facts['oldest_age']
    problems = []
    worst = OK
    for what, value, threshold, shown in (
            ('oldest message', age, max_age, _age),
            ('rejected', counts['rejected'], max_rejected, str),
            ('deferred', counts['deferred'], max_deferred, str)):
        state = threshold.state(value)
        if state == OK:
            continue
        worst = max(worst, state)
        limit = threshold.bound(state)
        if what == 'oldest message':
            problems.append(f'oldest message queued {shown(value)} ago'
                            f' (over {shown(limit)})')
        else:
            problems.append(f'{value} {what} (over {limit:g})')
    summary = (f'{counts["queued"]} queued, {counts["sending"]} being sent,'
               f' {counts["deferred"]} deferred, {counts["rejected"]}'
               f' rejected')
    if age is not None and not problems:
        summary += f', oldest queued {_age(age)} ago'
    text = '; '.join(problems + [summary])
    values = dict(counts, oldest_age=int(age or 0))
    return worst, line(worst, f'{escaped(facts["queue"])}: {escaped(text)}',
                       perfdata(values, max_age, max_rejected, max_deferred))


def perfdata(values, max_age=None, max_rejected=None, max_deferred=None):
    """The performance data of *values* (counts by state and
    ``oldest_age``; a value missing is ``U``, undetermined) with the
    thresholds."""
    limits = {'deferred': max_deferred or _NONE,
              'rejected': max_rejected or _NONE,
              'oldest_age': max_age or _NONE}
    parts = []
    for label in ('queued', 'sending', 'deferred', 'rejected', 'oldest_age'):
        value = values.get(label)
        shown = 'U' if value is None else str(value)
        unit = 's' if label == 'oldest_age' and value is not None else ''
        parts.append(f"'{label}'={shown}{unit};"
                     f"{limits.get(label, _NONE).perfdata()};0")
    return ' '.join(parts)


def unreadable(name, reason, state=CRITICAL, **thresholds):
    """The state and line of the queue *name* that could not be read, for
    *reason*: its performance data undetermined (``U``), with the
    thresholds (``max_age``...)."""
    # A Maildir's errors name its path already.
    text = reason if name in reason else f'{name}: {reason}'
    return state, line(state, escaped(text), perfdata({}, **thresholds))


def line(state, text, perfdata=None):
    """``STATE - text`` and ``| perfdata`` when there is some."""
    out = f'{STATE_NAMES[state]} - {text}'
    return out if perfdata is None else f'{out} | {perfdata}'
