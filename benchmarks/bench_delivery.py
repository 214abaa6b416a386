"""Throughput of zope.sendmail's deliveries against what the machine allows.

Each figure is printed beside a *ceiling* measured in the same run, on the
same disk or the same SMTP server, so that the ratio means something on any
machine.  A ceiling is the least work giving the same result, in plain
Python without the package:

1. Durable queued delivery, one message per transaction.  Ceiling "raw
   write + fsync + rename": per message ``os.open(O_CREAT|O_EXCL, 0o600)``,
   a ``write`` of the bytes our queue file gets (envelope lines, Message-Id,
   a ~2 KB message), ``fsync``, ``close``, ``rename`` into another folder.
   The package also syncs ``new/`` once per transaction (else a power loss
   may undo the rename), so a second ceiling adds that ``fsync(dir)``.  The
   target is judged against the first, as the issue states it.
2. The same with 1000 messages per transaction: the directory sync is paid
   once per transaction, so this must reach twice row 1's rate.
3. Non-durable queued delivery (``durable=False``), 1000 messages per
   transaction, against raw write + rename: the package's own CPU cost.
4. Direct delivery of 500 messages in one transaction (one connection),
   against ``smtplib.SMTP.sendmail`` of the same CRLF bytes 500 times on one
   connection, then ``quit``, to the same aiosmtpd sink; it runs in its own
   process (smtp_sink.py) so that it does not take our GIL.

Our side is timed as an application uses it: ``send(fromaddr, toaddrs,
text)`` with a ``str`` message with LF line endings and no Message-Id (the
package converts it and adds one), then ``transaction.commit()``.
Contenders run in alternating order for several rounds, each round in a
fresh directory, with ``os.sync()`` between rounds; the best round counts,
since noise only ever slows a round down ("paired" gives the median of
the ratios within a round, which drifting noise affects less).  Files are
deleted only at the end: on ext4 without a journal each file creation skips
the inodes deleted in the last minute one by one (the kernel's
``recently_deleted()``; up to 6 minutes while the deletion is not written
out), so deleting between rounds would slow the next one, and so does
anything deleting many files in the same temp dir (set TMPDIR to move it).
"""
import argparse
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import transaction

from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.smtp.mailer import SMTPMailer

# bin/py runs a script without putting its directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import FROM  # noqa: E402
from _helpers import MESSAGE  # noqa: E402
from _helpers import RAW_FILE  # noqa: E402
from _helpers import RAW_MESSAGE  # noqa: E402
from _helpers import TO  # noqa: E402
from _helpers import SinkProcess  # noqa: E402
from _helpers import cpu_seconds  # noqa: E402
from _helpers import fs_type  # noqa: E402
from _helpers import raw_direct  # noqa: E402
from _helpers import settle  # noqa: E402


O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)


# Errors logged by the package: a failed send is logged, not raised, and
# would make our figures look good for the wrong reason.
ERRORS = []


def ours_queued(root, durable, per_txn, n):
    path = os.path.join(tempfile.mkdtemp(dir=root), 'queue')
    delivery = QueuedMailDelivery(path, durable=durable)
    delivery.maildir                    # creates the folders
    transaction.abort()
    start = time.perf_counter()
    for _ in range(n // per_txn):
        for _ in range(per_txn):
            delivery.send(FROM, TO, MESSAGE)
        transaction.commit()
    elapsed = time.perf_counter() - start
    if len(os.listdir(os.path.join(path, 'new'))) != n:
        raise RuntimeError(f'{path}/new does not hold {n} messages')
    settle()
    return n / elapsed


def raw_queued(root, fsync, fsync_dir, n):
    path = tempfile.mkdtemp(dir=root)
    tmp, new = os.path.join(path, 'tmp'), os.path.join(path, 'new')
    os.mkdir(tmp)
    os.mkdir(new)
    start = time.perf_counter()
    for i in range(n):
        src = os.path.join(tmp, str(i))
        fd = os.open(src, O_NEW, 0o600)
        os.write(fd, RAW_FILE)
        if fsync:
            os.fsync(fd)
        os.close(fd)
        os.rename(src, os.path.join(new, str(i)))
        if fsync_dir:
            fd = os.open(new, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    elapsed = time.perf_counter() - start
    settle()
    return n / elapsed


def ours_direct(port, n):
    delivery = DirectMailDelivery(SMTPMailer('127.0.0.1', port, no_tls=True))
    transaction.abort()
    start = time.perf_counter()
    for _ in range(n):
        delivery.send(FROM, TO, MESSAGE)
    transaction.commit()
    return n / (time.perf_counter() - start)


def measure(rounds, contenders):
    """Run *contenders* (name -> function returning msgs/s) round-robin,
    reversing the order every round; return name -> rates by round."""
    rates = {name: [] for name in contenders}
    for i in range(rounds):
        order = list(contenders.items())
        for name, function in (order[::-1] if i % 2 else order):
            rates[name].append(function())
    return rates


def run(root, rounds, n_single):
    """Measure everything; return (name -> rates, sink count, expected)."""
    ours_queued(root, True, 1, 20)      # warm up
    raw_queued(root, True, True, 20)
    rates = measure(rounds, {
        'durable 1/txn': lambda: ours_queued(root, True, 1, n_single),
        'durable 1000/txn': lambda: ours_queued(root, True, 1000, 1000),
        'raw w+fsync+rename': lambda: raw_queued(root, True, False, n_single),
        'raw w+fsync+rename+fsync(dir)': lambda: raw_queued(
            root, True, True, n_single),
    })
    rates.update(measure(rounds, {
        'non-durable 1000/txn': lambda: ours_queued(root, False, 1000, 2000),
        'raw w+rename': lambda: raw_queued(root, False, False, 2000),
    }))
    sink, received = SinkProcess(), None
    try:
        ours_direct(sink.port, 20)      # warm up
        raw_direct(sink.port, 20)
        rates.update(measure(rounds, {
            'direct 500/txn': lambda: ours_direct(sink.port, 500),
            'raw smtplib x500': lambda: raw_direct(sink.port, 500),
        }))
    finally:
        received = sink.stop()
    return rates, received, 40 + 2 * 500 * rounds


ROWS = [  # number, ours, ceiling, target (None: for information)
    ('1', 'durable 1/txn', 'raw w+fsync+rename', 0.5),
    ('', 'durable 1/txn', 'raw w+fsync+rename+fsync(dir)', None),
    ('2', 'durable 1000/txn', 'durable 1/txn', 2.0),
    ('', 'durable 1000/txn', 'raw w+fsync+rename', None),
    ('3', 'non-durable 1000/txn', 'raw w+rename', 0.5),
    ('4', 'direct 500/txn', 'raw smtplib x500', 0.7),
]


def report(rates, received, expected):
    """Print the table; return True when every target is met."""
    best = {name: max(values) for name, values in rates.items()}
    line = '{:2} {:21} {:>7}  {:30} {:>7} {:>6} {:>6} {:>9}  {}'
    print(line.format('', 'ours', 'msgs/s', 'ceiling', 'msgs/s', 'ratio',
                      'paired', 'target', 'result'))
    ok = True
    for number, ours, ceiling, target in ROWS:
        value = best[ours] / best[ceiling]
        paired = statistics.median(
            o / c for o, c in zip(rates[ours], rates[ceiling]))
        show = ((lambda x: f'{x:.2f}x') if ceiling == 'durable 1/txn'
                else (lambda x: f'{x:.0%}'))
        goal, result = '', '(info)'
        if target is not None:
            goal = '>= ' + show(target)
            result = 'PASS' if value >= target else 'FAIL'
            ok = ok and value >= target
        print(line.format(number, ours, f'{best[ours]:.0f}', ceiling,
                          f'{best[ceiling]:.0f}', show(value), show(paired),
                          goal, result))
    print('\nratio: of the best rounds; paired: median over rounds of the'
          ' ratio within a round.\nall rounds (msgs/s, in order):')
    for name, values in rates.items():
        print(f'  {name:30}' + ''.join(f'{v:8.0f}' for v in values))
    if ERRORS:
        print(f'\nINVALID: the package logged {len(ERRORS)} error(s)')
    if received != expected:
        print(f'\nINVALID: the SMTP sink received {received} messages,'
              f' not {expected}')
    else:
        print(f'\nThe SMTP sink received all {received} messages sent.')
    return ok and not ERRORS and received == expected


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer, smaller rounds')
    parser.add_argument('--check', action='store_true',
                        help='exit with status 1 when a target is missed')
    args = parser.parse_args(argv)
    rounds, n_single = (2, 200) if args.quick else (5, 600)
    handler = logging.Handler(logging.ERROR)
    handler.emit = ERRORS.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    root = tempfile.mkdtemp(prefix='zope-sendmail-bench-')
    print(f'Python {platform.python_version()}'
          f' ({platform.python_implementation()}), {platform.system()},'
          f' {os.cpu_count()} CPUs; {root} is on {fs_type(root)}')
    print(f'message: {len(MESSAGE)} chars of LF text given to send(),'
          f' {len(RAW_FILE)} bytes in the queue file, {len(RAW_MESSAGE)}'
          f' bytes of SMTP DATA; best of {rounds} rounds\n')
    own, machine, start = *cpu_seconds(), time.perf_counter()
    try:
        rates, received, expected = run(root, rounds, n_single)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        settle()                        # see the module docstring
    ok = report(rates, received, expected)
    own_after, machine_after = cpu_seconds()
    own = own_after - own
    print(f'Run: {time.perf_counter() - start:.0f} s; CPU used by the'
          f' benchmark and its sink {own:.1f} s, by everything else'
          f' (other processes, kernel threads): ' + (
              'unknown' if machine is None else
              f'{max(0, machine_after - machine - own):.1f} s'))
    return 1 if args.check and not ok else 0


if __name__ == '__main__':
    sys.exit(main())
