"""Throughput of zope.sendmail's deliveries against what the machine allows.

Each figure is printed beside a *ceiling* measured in the same run, on the
same rates or the same SMTP server, so that the ratio means something on any
machine.  A ceiling is the least work that gives the same result, written
in plain Python with nothing of the package:

1. Durable queued delivery, one message per transaction.  Ceiling: "raw
   write + fsync + rename": for every message ``os.open(O_CREAT|O_EXCL,
   0o600)``, one ``write`` of the same bytes the queue file gets (envelope
   lines + Message-Id + a ~2 KB message), ``fsync``, ``close`` and
   ``rename`` into another directory.  The package also syncs the ``new/``
   directory once per transaction (without it a power loss may undo the
   rename), so a second ceiling adds that ``fsync(dir)``; both ratios are
   shown, and the target is judged against the first, as the issue states.
2. Durable queued delivery, 1000 messages per transaction: the directory
   sync is paid once per transaction, so this must be at least twice the
   rate of row 1.  The ratio against raw write + fsync + rename is shown
   too.
3. Non-durable queued delivery (``durable=False``), 1000 messages per
   transaction.  Ceiling: raw write + rename, no fsync; this row measures
   the package's own CPU overhead per message.
4. Direct delivery of 500 messages in one transaction (one SMTP connection).
   Ceiling: ``smtplib.SMTP.sendmail`` of the same (already CRLF) bytes 500
   times on one connection, then ``quit``, to the same aiosmtpd sink, which
   runs in its own process (smtp_sink.py) so it does not take our GIL.

Our side is timed as an application uses it: ``send(fromaddr, toaddrs,
text)`` with a ``str`` message with LF line endings and no Message-Id (the
package converts and adds one), then ``transaction.commit()``.  Contenders
run in alternating order, several rounds each, each on a fresh directory
(removed and ``os.sync()``-ed outside the timing); the best round counts,
since noise only ever slows a round down.  Options: ``--quick`` (fewer and
smaller rounds), ``--check`` (exit 1 when a target is missed).
"""
import argparse
import logging
import os
import platform
import queue
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import transaction

from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.mailer import SMTPMailer


HERE = os.path.dirname(os.path.abspath(__file__))
FROM = 'sender@example.com'
TO = ('recipient@example.org',)
_LINE = 'Line %02d of the body: your order has been packed and shipped.\n'
MESSAGE = (
    'From: Example Shop <sender@example.com>\n'
    'To: Example Customer <recipient@example.org>\n'
    'Subject: Your order 12345 has shipped\n'
    'Date: Mon, 24 Nov 2025 10:00:00 +0000\n'
    'MIME-Version: 1.0\n'
    'Content-Type: text/plain; charset="utf-8"\n'
    'Content-Transfer-Encoding: 7bit\n'
    '\n' + ''.join(_LINE % i for i in range(28)))
# What the package produces from MESSAGE, for the ceilings: same length.
_MSGID = '<%s.%d.%s@%s>' % (time.strftime('%Y%m%d%H%M%S'), os.getpid(),
                            '0' * 16, socket.gethostname())
RAW_MESSAGE = (f'Message-Id: {_MSGID}\n{MESSAGE}'
               .replace('\n', '\r\n').encode('ascii'))
RAW_FILE = (f'X-Zope-From: {FROM}\nX-Zope-To: {", ".join(TO)}\n'
            .encode('ascii') + RAW_MESSAGE)
O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)


class ErrorCounter(logging.Handler):
    """Counts errors the package logs (a failed send is logged, not raised,
    and would make our figures look good for the wrong reason)."""
    count = 0

    def emit(self, record):
        self.count += 1


ERRORS = ErrorCounter(logging.ERROR)


def fs_type(path):
    """The file system type of *path*, from /proc/mounts if there is one."""
    path, best = os.path.realpath(path), ('', 'unknown')
    try:
        with open('/proc/mounts') as mounts:
            for line in mounts:
                mount_point, kind = line.split()[1:3]
                prefix = mount_point.rstrip('/') + '/'
                if ((path + '/').startswith(prefix)
                        and len(mount_point) >= len(best[0])):
                    best = (mount_point, kind)
    except OSError:
        pass
    return best[1]


def cleanup(path):
    shutil.rmtree(path)
    if hasattr(os, 'sync'):
        os.sync()   # so that the next round does not pay for this one


def ours_queued(root, durable, per_txn, n):
    path = tempfile.mkdtemp(dir=root)
    delivery = QueuedMailDelivery(os.path.join(path, 'q'), durable=durable)
    delivery.maildir                    # creates the folders
    transaction.abort()
    start = time.perf_counter()
    for _ in range(n // per_txn):
        for _ in range(per_txn):
            delivery.send(FROM, TO, MESSAGE)
        transaction.commit()
    elapsed = time.perf_counter() - start
    queued = len(os.listdir(os.path.join(path, 'q', 'new')))
    if queued != n // per_txn * per_txn:
        raise RuntimeError(f'{queued} messages queued, expected {n}')
    cleanup(path)
    return queued / elapsed


def raw_queued(root, fsync, fsync_dir, n):
    path = tempfile.mkdtemp(dir=root)
    tmp, new = os.path.join(path, 'tmp'), os.path.join(path, 'new')
    os.mkdir(tmp)
    os.mkdir(new)
    start = time.perf_counter()
    for i in range(n):
        name = str(i)
        src = os.path.join(tmp, name)
        fd = os.open(src, O_NEW, 0o600)
        os.write(fd, RAW_FILE)
        if fsync:
            os.fsync(fd)
        os.close(fd)
        os.rename(src, os.path.join(new, name))
        if fsync_dir:
            fd = os.open(new, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    elapsed = time.perf_counter() - start
    cleanup(path)
    return n / elapsed


def ours_direct(port, n):
    delivery = DirectMailDelivery(SMTPMailer('127.0.0.1', port, no_tls=True))
    transaction.abort()
    start = time.perf_counter()
    for _ in range(n):
        delivery.send(FROM, TO, MESSAGE)
    transaction.commit()
    return n / (time.perf_counter() - start)


def raw_direct(port, n):
    start = time.perf_counter()
    smtp = smtplib.SMTP('127.0.0.1', port, timeout=10)
    for _ in range(n):
        smtp.sendmail(FROM, list(TO), RAW_MESSAGE)
    smtp.quit()
    return n / (time.perf_counter() - start)


class Sink:
    """The SMTP sink process (smtp_sink.py); every wait is bounded."""

    def __init__(self, timeout=20):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'smtp_sink.py')],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self._next(timeout)
        if not line.startswith('PORT '):
            self.stop()
            raise RuntimeError(f'SMTP sink did not start: {line!r}')
        self.port = int(line.split()[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put('')

    def _next(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return ''

    def stop(self):
        """Stop the sink; return how many messages it received, or None."""
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        line = self._next(2)
        return int(line.split()[1]) if line.startswith('RECEIVED ') else None


def measure(rounds, contenders):
    """Run *contenders* (name -> function returning msgs/s) round-robin,
    reversing the order every round; return name -> rates, best first."""
    rates = {name: [] for name in contenders}
    for i in range(rounds):
        order = list(contenders.items())
        for name, function in (order[::-1] if i % 2 else order):
            rates[name].append(function())
    return {name: sorted(r, reverse=True) for name, r in rates.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer, smaller rounds')
    parser.add_argument('--check', action='store_true',
                        help='exit 1 when a target is missed')
    args = parser.parse_args(argv)
    rounds, n_single = (2, 200) if args.quick else (5, 600)
    logging.getLogger('zope.sendmail').addHandler(ERRORS)
    root = tempfile.mkdtemp(prefix='zope-sendmail-bench-')
    sink, received, expected = None, None, 0
    print(f'Python {platform.python_version()}'
          f' ({platform.python_implementation()}) on {platform.system()},'
          f' {os.cpu_count()} CPUs; temp dir {root} is {fs_type(root)}')
    print(f'message: {len(MESSAGE)} chars of LF text as given to send();'
          f' queue file {len(RAW_FILE)} bytes; SMTP DATA'
          f' {len(RAW_MESSAGE)} bytes; best of {rounds} rounds')
    try:
        # Warm up: imports, caches, the first transaction.
        ours_queued(root, True, 1, 20)
        raw_queued(root, True, True, 20)
        rates = measure(rounds, {
            'durable 1/txn': lambda: ours_queued(root, True, 1, n_single),
            'durable 1000/txn': lambda: ours_queued(root, True, 1000, 1000),
            'raw w+fsync+rename': lambda: raw_queued(
                root, True, False, n_single),
            'raw w+fsync+rename+fsync(dir)': lambda: raw_queued(
                root, True, True, n_single),
        })
        rates.update(measure(rounds, {
            'non-durable 1000/txn': lambda: ours_queued(
                root, False, 1000, 3000),
            'raw w+rename': lambda: raw_queued(root, False, False, 3000),
        }))
        sink = Sink()
        ours_direct(sink.port, 20)
        raw_direct(sink.port, 20)
        expected = 40 + 500 * 2 * rounds
        rates.update(measure(rounds, {
            'direct 500/txn': lambda: ours_direct(sink.port, 500),
            'raw smtplib x500': lambda: raw_direct(sink.port, 500),
        }))
    finally:
        if sink is not None:
            received = sink.stop()
        shutil.rmtree(root, ignore_errors=True)
    best = {name: rates[0] for name, rates in rates.items()}
    return report(best, rates, received, expected, args.check)


ROWS = [  # number, ours, ceiling, target (None: shown for information)
    ('1', 'durable 1/txn', 'raw w+fsync+rename', 0.5),
    ('', 'durable 1/txn', 'raw w+fsync+rename+fsync(dir)', None),
    ('2', 'durable 1000/txn', 'durable 1/txn', 2.0),
    ('', 'durable 1000/txn', 'raw w+fsync+rename', None),
    ('3', 'non-durable 1000/txn', 'raw w+rename', 0.5),
    ('4', 'direct 500/txn', 'raw smtplib x500', 0.7),
]


def report(best, rates, received, expected, check):
    def ratio(value, as_times):
        return f'{value:.2f}x' if as_times else f'{value:.0%}'

    line = '{:2} {:21} {:>8}  {:30} {:>8} {:>6}  {:>8}  {}'
    print()
    print(line.format('', 'ours', 'msgs/s', 'ceiling', 'msgs/s', 'ratio',
                      'target', 'result'))
    failed = False
    for number, ours, ceiling, target in ROWS:
        as_times = ceiling.startswith('durable')
        value = best[ours] / best[ceiling]
        if target is None:
            goal, result = '', '(info)'
        else:
            goal = '>= ' + ratio(target, as_times)
            result = 'PASS' if value >= target else 'FAIL'
            failed = failed or value < target
        print(line.format(number, ours, f'{best[ours]:.0f}', ceiling,
                          f'{best[ceiling]:.0f}', ratio(value, as_times),
                          goal, result))
    print('\nall rounds (msgs/s, best first):')
    for name, values in rates.items():
        print(f'  {name:30} ' + ' '.join(f'{v:7.0f}' for v in values))
    if ERRORS.count:
        failed = True
        print(f'\nINVALID: the package logged {ERRORS.count} error(s)')
    if received != expected:
        failed = True
        print(f'\nINVALID: the SMTP sink received {received} messages,'
              f' expected {expected}')
    else:
        print(f'\nSMTP sink received all {received} messages sent.')
    return 1 if check and failed else 0


if __name__ == '__main__':
    sys.exit(main())
