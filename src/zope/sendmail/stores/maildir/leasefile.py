"""The processor lease file: its name, its content, who writes it.

``.processor-lease`` in a queue directory holds ``key: value`` lines:
``host``, ``boot_id`` and ``pidns`` (the holder's pid namespace) and
``pid`` say who holds it; ``token`` (random, per lease object) which
holder exactly; ``serial`` grows at each renewal, ``renewed`` is the
holder's wall-clock time of it (for operators: standbys judge by their own
clock) and ``timeout`` the holder's takeover bound.  `lease`
writes it; `zope-sendmail --status` reads it (`read_lease`), as a regular
file only and at most `LEASE_SIZE` bytes of it.
"""
import os
import socket
import time

from zope.sendmail.stores.maildir.safefiles import NotRegularFileError
from zope.sendmail.stores.maildir.safefiles import read_regular


LEASE = '.processor-lease'
LEASE_SIZE = 4096  # a lease file is a few hundred bytes


def clock():
    """Seconds on a clock that keeps counting while the host sleeps."""
    return time.clock_gettime(getattr(time, 'CLOCK_BOOTTIME',
                                      time.CLOCK_MONOTONIC))


def _read(path, default=''):
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            return f.read().strip()
    except OSError:
        return default  # not Linux: the fields stay empty


def identity():
    """This process's host name, boot id, pid namespace and pid."""
    try:
        pidns = str(os.stat('/proc/self/ns/pid').st_ino)
    except OSError:
        pidns = ''
    return {'host': socket.gethostname(),
            'boot_id': _read('/proc/sys/kernel/random/boot_id'),
            'pidns': pidns, 'pid': str(os.getpid())}


def parse(data):
    """The fields of a lease file's *data* (bytes), by key."""
    fields = {}
    for line in data.decode('utf-8', 'replace').splitlines():
        key, sep, value = line.partition(':')
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def read_bytes(path):
    """The bytes of the lease file *path*, or None if there is none;
    `NotRegularFileError` (an OSError) for a link, a FIFO..."""
    try:
        return read_regular(path, LEASE_SIZE)
    except FileNotFoundError:
        return None


def read_lease(queue_path):
    """The fields of the queue's lease file, or None if it has none."""
    try:
        data = read_bytes(os.path.join(queue_path, LEASE))
    except NotRegularFileError:
        return {}  # shown as unreadable
    return None if data is None else parse(data)


def check_settings(timeout, renew, margin):
    """Raise ValueError unless 0 < *renew* < (*timeout* - *margin*) / 2."""
    validity = (timeout - margin) / 2
    if margin < 0 or validity <= 0:
        raise ValueError(f'lease_margin ({margin:g} s) must be at least 0'
                         f' and less than lease_timeout ({timeout:g} s)')
    if not 0 < renew < validity:
        raise ValueError(f'lease_renew ({renew:g} s) must be less than'
                         f' (lease_timeout - lease_margin) / 2'
                         f' ({validity:g} s)')


def describe_lease(fields, now):
    """Who holds the lease (its `read_lease` *fields*, or None) at *now*,
    for ``zope-sendmail --status``."""
    if fields is None:
        return 'none'
    text = f'held by {fields.get("host", "?")} pid {fields.get("pid", "?")}'
    try:
        age = max(0.0, now - float(fields['renewed']))
        timeout = float(fields.get('timeout', 120))
    except (KeyError, ValueError):
        return text + ' (unreadable lease file)'
    text += f', renewed {age:.0f} s ago'
    if age > timeout:
        text += ' (stale: may be taken over)'
    return text
