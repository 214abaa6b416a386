"""What the benchmark scripts share: the message they send, the SMTP sink
process, the raw references (plain smtplib and plain file writes, the
"ceilings"), filling and draining a queue, the delivery checks, the CPU
accounting and the table.

The scripts (bench_*.py) import this module and no other script; the child
processes are scripts of their own, started by path: smtp_sink.py (the
sink) and drain_child.py (a drain in a fresh process).
"""
import json
import os
import queue
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time


HERE = os.path.dirname(os.path.abspath(__file__))


# The message

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
# What the package makes of MESSAGE, for the ceilings (same length).
_MSGID = '<%s.%d.%s@%s>' % (time.strftime('%Y%m%d%H%M%S'), os.getpid(),
                            '0' * 16, socket.gethostname())
RAW_MESSAGE = (f'Message-Id: {_MSGID}\n{MESSAGE}'
               .replace('\n', '\r\n').encode('ascii'))
RAW_FILE = (f'X-Zope-From: {FROM}\nX-Zope-To: {", ".join(TO)}\n'
            .encode('ascii') + RAW_MESSAGE)


# The machine

# Writes out what a round left dirty, outside the timing.
settle = getattr(os, 'sync', lambda: None)


def fs_type(path):
    """The file system type of *path*, from /proc/mounts if there is one."""
    path, best = os.path.realpath(path) + '/', ('', 'unknown', '')
    try:
        with open('/proc/mounts') as mounts:
            for line in mounts:
                device, mount_point, kind = line.split()[:3]
                if (path.startswith(mount_point.rstrip('/') + '/')
                        and len(mount_point) >= len(best[0])):
                    best = (mount_point, kind, os.path.basename(device))
    except OSError:
        pass
    if best[1] == 'ext4' and os.path.isdir('/proc/fs/jbd2') and not any(
            j.startswith(best[2] + '-') for j in os.listdir('/proc/fs/jbd2')):
        return 'ext4 (no journal)'
    return best[1]


def cpu_seconds():
    """(CPU seconds used by this process and its children, by the whole
    machine or None when unknown)."""
    try:
        with open('/proc/stat') as stat:
            ticks = [int(t) for t in stat.readline().split()[1:]]
        machine = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf(
            'SC_CLK_TCK')                     # all but idle and iowait
    except (OSError, ValueError, IndexError):
        machine = None
    return sum(os.times()[:4]), machine


def child_env():
    """The environment for a child: our sys.path, so that it imports what
    we do (bin/py sets its path in the script, not in the environment)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in sys.path if p))


# The SMTP sink

class SinkProcess:
    """smtp_sink.py run in a child process, so that the server does not
    compete with the benchmark for the GIL; every wait is bounded."""

    def __init__(self, delay=0.0, timeout=20, max_connections=None,
                 max_rate=None):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'smtp_sink.py'), str(delay),
             str(max_connections or '-'), str(max_rate or '-')],
            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=child_env())
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self._next(timeout)
        if not line.startswith('PORT '):
            self.stop()
            raise RuntimeError(f'the SMTP sink did not start: {line!r}')
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

    def report(self, timeout=30):
        """({message id: [times received, time.time() of the first]},
        number of messages without an id) since the last report."""
        self.proc.stdin.write('REPORT\n')
        self.proc.stdin.flush()
        line = self._next(timeout)
        if not line.startswith('{'):
            raise RuntimeError(f'the SMTP sink did not report: {line!r}')
        data = json.loads(line)
        self.counts = data['counts']  # connections, turned_away, throttled
        return data['ids'], data['noid']

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


def tally(report, ids):
    """(missing, duplicated, unexpected) message counts of a sink report
    against the ids sent."""
    seen, noid = report
    wanted = set(ids)
    missing = sum(1 for i in wanted if i not in seen)
    duplicated = sum(1 for i in wanted if seen.get(i, [0])[0] > 1)
    unexpected = noid + sum(1 for i in seen if i not in wanted)
    return missing, duplicated, unexpected


class DeliveryChecks:
    """Called with a sink report after each part: notes a problem unless
    the sink got each message sent once and nothing else (and, given
    *sent*, the processor said it sent them all)."""

    def __init__(self):
        self.problems = []      # the checks that failed, for the report
        self.checked = 0        # messages checked at the sink

    def __call__(self, label, seen, ids, sent=None):
        self.checked += len(ids)
        missing, duplicated, unexpected = tally(seen, ids)
        if sent is not None and sent != len(ids):
            self.problems.append(
                f'{label}: the processor sent {sent} of {len(ids)}')
        if missing or duplicated or unexpected:
            self.problems.append(
                f'{label}: {missing} missing, {duplicated} received more'
                f' than once, {unexpected} unexpected')


# The raw references: plain smtplib

def raw_direct(port, n):
    """smtplib, one connection, RAW_MESSAGE *n* times; msgs/s."""
    start = time.perf_counter()
    smtp = smtplib.SMTP('127.0.0.1', port, timeout=10)
    for _ in range(n):
        smtp.sendmail(FROM, list(TO), RAW_MESSAGE)
    smtp.quit()
    return n / (time.perf_counter() - start)


def raw_one_connection(port, bodies):
    """The ceiling: smtplib, one connection, sendmail for each; seconds."""
    start = time.perf_counter()
    smtp = smtplib.SMTP('127.0.0.1', port, timeout=10)
    for fromaddr, toaddrs, message in bodies:
        smtp.sendmail(fromaddr, toaddrs, message)
    smtp.quit()
    return time.perf_counter() - start


def raw_parallel(port, bodies, k):
    """smtplib over *k* reused connections at once; seconds."""
    chunks = [bodies[i::k] for i in range(k)]

    def send(chunk):
        smtp = smtplib.SMTP('127.0.0.1', port, timeout=30)
        for fromaddr, toaddrs, message in chunk:
            smtp.sendmail(fromaddr, toaddrs, message)
        smtp.quit()
    threads = [threading.Thread(target=send, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def raw_73(port, bodies, starts=None):
    """zope.sendmail 7.3's way: a connection per message, one after the
    other (connect, EHLO, sendmail, QUIT); seconds.  Appends the
    time.time() at which each message began to *starts*."""
    start = time.perf_counter()
    for fromaddr, toaddrs, message in bodies:
        if starts is not None:
            starts.append(time.time())
        smtp = smtplib.SMTP('127.0.0.1', port, timeout=10)
        smtp.ehlo()
        smtp.sendmail(fromaddr, toaddrs, message)
        smtp.quit()
    return time.perf_counter() - start


# A queue: filling it, draining it

def fill(root, n, message, sender, to, per_txn=1000):
    """A new queue holding *n* messages; return its path and their ids."""
    import transaction

    from zope.sendmail.delivery import QueuedMailDelivery
    path = os.path.join(tempfile.mkdtemp(dir=root), 'queue')
    delivery = QueuedMailDelivery(path, durable=False)
    transaction.abort()
    ids = []
    for start in range(0, n, per_txn):
        for _ in range(min(per_txn, n - start)):
            ids.append(delivery.send(sender, to, message))
        transaction.commit()
    return path, ids


def read_queue(path):
    """[(fromaddr, toaddrs, message bytes)] of the messages in new/."""
    from zope.sendmail.stores.maildir.envelope import parse_envelope
    new = os.path.join(path, 'new')
    result = []
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), 'rb') as f:
            result.append(parse_envelope(f.read()))
    return result


def wait_sent(path, timeout):
    """Wait until the queue at *path* holds no message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(not name.startswith('.') for sub in ('new', 'cur')
                   for name in os.listdir(os.path.join(path, sub))):
            return
        time.sleep(0.01)


def processor(path, port, **kw):
    from zope.sendmail.processing.thread import QueueProcessorThread
    from zope.sendmail.smtp.mailer import SMTPMailer
    return QueueProcessorThread(mailer=SMTPMailer('127.0.0.1', port,
                                                  no_tls=True),
                                queuePath=path, **kw)


def drain(path, port, expected, **kw):
    """Send the *expected* messages queued at *path* with `process_once`
    passes (a running thread does the same, between waits); return
    (seconds, sent).  Stops early when a pass gets nothing done."""
    thread = processor(path, port, **kw)
    sent, start = 0, time.perf_counter()
    while sent < expected:
        result = thread.process_once()
        sent += result.counts['sent']
        if result.error is not None or not sum(result.counts.values()):
            break
    return time.perf_counter() - start, sent


def drain_in_child(path, port, expected, trace=False, timeout=600):
    """`drain` in a fresh process (drain_child.py); the dict it prints."""
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, 'drain_child.py'), path,
         str(port), str(expected)] + (['tracemalloc'] if trace else []),
        env=child_env(), stdout=subprocess.PIPE, text=True, timeout=timeout,
        check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# The report

def pct(values, q):
    """The *q* quantile of *values* (nearest rank)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values \
        else float('nan')


def report(rows):
    """Print the table; return True when every target is met."""
    line = '{:2} {:34} {:>11}  {:32} {:>11} {:>7} {:>9}  {}'
    print(line.format('', 'ours', '', 'reference', '', 'ratio', 'target',
                      'result'))
    ok = True
    for number, ours, value, ceiling, ref, ratio, target, passed in rows:
        result = '(info)' if passed is None else 'PASS' if passed else 'FAIL'
        ok = ok and passed is not False
        print(line.format(number, ours, value, ceiling, ref, ratio, target,
                          result))
    return ok


def run_footer(start, before, after):
    """Print how long the run since *start* took and the CPU seconds the
    benchmark and everything else used (*before* and *after*: the pairs
    ``cpu_seconds()`` returned; the machine's figure may be None)."""
    own = after[0] - before[0]
    print(f'Run: {time.perf_counter() - start:.0f} s; CPU used by the'
          f' benchmark and its children {own:.1f} s, by everything else: ' + (
              'unknown' if before[1] is None else
              f'{max(0, after[1] - before[1] - own):.1f} s'))
