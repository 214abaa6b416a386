"""Helpers of bench_queue.py: queue filling, the raw smtplib senders (the
ceilings) and the drain, in or out of process.  The SMTP sink, with its
delay and its per-Message-Id report, is smtp_sink.py's.

Run as a script (``drain PATH PORT N [tracemalloc]``) it drains the N
messages queued at PATH into the sink at PORT with a fresh
`QueueProcessorThread` (defaults: 8 connections, 100 messages each), one
`process_once` after the other, and prints one JSON line: seconds, messages
sent, the peak RSS before and after (see `peak_rss_kb`), the warnings
logged, and with ``tracemalloc`` the Python heap's peak.
"""
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import time

from smtp_sink import SinkProcess
from smtp_sink import child_env


# The sink of bench_delivery, with its delay and per-Message-Id report.
QueueSink = SinkProcess


def tally(report, ids):
    """(missing, duplicated, unexpected) message counts of a sink report
    against the ids sent."""
    seen, noid = report
    wanted = set(ids)
    missing = sum(1 for i in wanted if i not in seen)
    duplicated = sum(1 for i in wanted if seen.get(i, [0])[0] > 1)
    unexpected = noid + sum(1 for i in seen if i not in wanted)
    return missing, duplicated, unexpected


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


def raw_one_connection(port, bodies):
    """The ceiling: smtplib, one connection, sendmail for each; seconds."""
    start = time.perf_counter()
    smtp = smtplib.SMTP('127.0.0.1', port, timeout=10)
    for fromaddr, toaddrs, message in bodies:
        smtp.sendmail(fromaddr, toaddrs, message)
    smtp.quit()
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


def wait_sent(path, timeout):
    """Wait until the queue at *path* holds no message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(not name.startswith('.') for sub in ('new', 'cur')
                   for name in os.listdir(os.path.join(path, sub))):
            return
        time.sleep(0.01)


def run_footer(start, before, after):
    """Print how long the run since *start* took and the CPU seconds the
    benchmark and everything else used (*before* and *after*: the pairs
    ``cpu_seconds()`` returned; the machine's figure may be None)."""
    own = after[0] - before[0]
    print(f'Run: {time.perf_counter() - start:.0f} s; CPU used by the'
          f' benchmark and its children {own:.1f} s, by everything else: ' + (
              'unknown' if before[1] is None else
              f'{max(0, after[1] - before[1] - own):.1f} s'))


def pct(values, q):
    """The *q* quantile of *values* (nearest rank)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values \
        else float('nan')


def processor(path, port, **kw):
    from zope.sendmail.smtp.mailer import SMTPMailer
    from zope.sendmail.processing.thread import QueueProcessorThread
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
    """`drain` in a fresh process; the dict it prints."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), 'drain', path, str(port),
         str(expected)] + (['tracemalloc'] if trace else []), env=child_env(),
        stdout=subprocess.PIPE, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_kb():
    """The process's peak RSS: VmHWM, which /proc/self/clear_refs resets;
    ru_maxrss elsewhere.  (On Linux ru_maxrss is at least the peak of the
    memory the process had before exec: the parent's, when spawned.)"""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def drain_main(path, port, expected, trace):
    import logging
    import tracemalloc

    # Imported before measuring.
    import zope.sendmail.processing.thread  # noqa: F401
    import zope.sendmail.smtp.mailer  # noqa: F401
    errors = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = errors.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    try:
        # Resets the peak RSS (VmHWM) to the current RSS (Linux).
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
    rss_before = peak_rss_kb()
    if trace:
        tracemalloc.start()
    seconds, sent = drain(path, int(port), int(expected))
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    print(json.dumps({
        'seconds': seconds, 'sent': sent, 'rss_before_kb': rss_before,
        'rss_kb': peak_rss_kb(), 'heap_peak': peak, 'errors': len(errors)}),
        flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'drain':
        drain_main(*sys.argv[2:5], 'tracemalloc' in sys.argv[5:])
