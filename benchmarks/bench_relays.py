"""How fast zope.sendmail sends through relays that limit it, against what
they allow, and direct delivery of one message per transaction.

Each figure is printed beside a reference measured in the same run,
against the same SMTP sink (a separate process, see smtp_sink.py), which
answers every command 10 ms late in rows 1 and 2, as a provider's relay
would.  A running `QueueProcessorThread` with its defaults (8 connections
at most, 100 messages each, 3 s interval) drains each queue:

1. A relay taking at most 3 connections (``432 4.3.2`` beyond, as
   Exchange Online): the drain against smtplib sending the same messages
   over 3 reused connections at once.  Target >= 90 %, at most 2
   connections turned away.
2. A relay taking at most 14 messages a second (``454 4.7.0 Throttling
   failure`` beyond, as Amazon SES): the drain against 14 msg/s.  Target
   >= 90 %, ``454`` replies for at most 10 % of the messages, no message
   deferred to ``cur/``.
3. Ten due messages: how many connections carry them (target 1), and
   whether the relay got them in queue order (oldest first).
4. Direct delivery, one message per transaction (a web request's case),
   against smtplib sending as many over one reused connection.  Target
   >= 70 %.

Every message must reach the sink exactly once, and the package must log
no warning (a deferral would); otherwise the "delivery check" row fails.
bench_queue.py measures the relays without limits.
"""
import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time

import transaction

from zope.sendmail.delivery import DirectMailDelivery
from zope.sendmail.smtp.mailer import SMTPMailer

# bin/py runs a script without putting its directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _helpers as h  # noqa: E402
from _helpers import FROM  # noqa: E402
from _helpers import MESSAGE  # noqa: E402
from _helpers import TO  # noqa: E402
from _helpers import cpu_seconds  # noqa: E402
from _helpers import raw_direct  # noqa: E402
from _helpers import settle  # noqa: E402


ERRORS = []             # warnings and errors logged by the package
check = h.DeliveryChecks()


def thread_drain(path, port, n, timeout=300):
    """Seconds a running thread (defaults, 3 s interval) takes to deliver
    the *n* messages queued at *path*; the cur/ files left."""
    thread = h.processor(path, port)
    start = time.perf_counter()
    thread.start()
    try:
        h.wait_sent(path, timeout)
        seconds = time.perf_counter() - start
    finally:
        thread.stop(30)
    return seconds, [n for n in os.listdir(os.path.join(path, 'cur'))
                     if not n.startswith('.')]


def limited(queue, sink, label):
    """(seconds, cur/ files, sink counts) of a drain."""
    path, ids = queue
    settle()
    seconds, cur = thread_drain(path, sink.port, len(ids))
    check(label, sink.report(), ids)
    return seconds, cur, dict(sink.counts)


def ten_due(root, sink):
    """(connections, in queue order) for ten due messages."""
    path, ids = h.fill(root, 10, MESSAGE, FROM, TO, per_txn=1)
    seconds, cur = thread_drain(path, sink.port, 10)
    seen = sink.report()
    check('row 3 ten due', seen, ids)
    arrived = sorted(ids, key=lambda i: seen[0].get(i, [0, 0])[1])
    return sink.counts['connections'], arrived == ids


def direct(port, n):
    """msgs/s of one message per transaction, direct delivery."""
    delivery = DirectMailDelivery(SMTPMailer('127.0.0.1', port, no_tls=True))
    transaction.abort()
    start = time.perf_counter()
    for _ in range(n):
        delivery.send(FROM, TO, MESSAGE)
        transaction.commit()
    rate = n / (time.perf_counter() - start)
    delivery.mailer.connection_cache.clear()
    return rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='smaller queues')
    parser.add_argument('--check', action='store_true',
                        help='exit with status 1 when a target is missed')
    args = parser.parse_args(argv)
    n, n4, rounds = (150, 300, 2) if args.quick else (300, 1000, 3)
    handler = logging.Handler(logging.WARNING)
    handler.emit = ERRORS.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    root = tempfile.mkdtemp(prefix='zope-sendmail-bench-relays-')
    print(f'Python {platform.python_version()}'
          f' ({platform.python_implementation()}), {platform.system()},'
          f' {os.cpu_count()} CPUs; {n} messages a drain, {n4} direct\n')
    own, machine, start = *cpu_seconds(), time.perf_counter()
    sinks = []
    try:
        three = h.SinkProcess(delay=0.01, max_connections=3)
        rate = h.SinkProcess(delay=0.01, max_rate=14)
        local = h.SinkProcess()
        sinks += [three, rate, local]
        queues = [h.fill(root, n, MESSAGE, FROM, TO, per_txn=1)
                  for _ in range(2)]
        r1, cur1, counts1 = limited(queues[0], three, 'row 1 drain')
        bodies = h.read_queue(h.fill(root, n, MESSAGE, FROM, TO)[0])
        raw1 = n / h.raw_parallel(three.port, bodies, 3)
        three.report()
        r2, cur2, counts2 = limited(queues[1], rate, 'row 2 drain')
        connections3, ordered = ten_due(root, three)
        ours4, raw4 = [], []
        for i in range(rounds):
            for who in (('ours', 'raw') if i % 2 == 0 else ('raw', 'ours')):
                settle()
                if who == 'ours':
                    ours4.append(direct(local.port, n4))
                else:
                    raw4.append(raw_direct(local.port, n4))
        local.report()
    finally:
        for sink in sinks:
            sink.stop()
        shutil.rmtree(root, ignore_errors=True)
    d1, d2 = n / r1, n / r2
    ratio1, ratio2, ratio4 = d1 / raw1, d2 / 14, max(ours4) / max(raw4)
    away, thr = counts1['turned_away'], counts2['throttled']
    rows = [
        ('1', f'drain {n}, 3-connection relay', f'{d1:.1f} msg/s',
         'smtplib, 3 reused connections', f'{raw1:.1f} msg/s',
         f'{ratio1:.0%}', '>= 90%', ratio1 >= 0.9),
        ('', 'connections turned away', f'{away}', 'connections accepted',
         f'{counts1["connections"] - away}', '', '<= 2', away <= 2),
        ('2', f'drain {n}, 14 msg/s relay', f'{d2:.1f} msg/s',
         "the relay's rate", '14.0 msg/s', f'{ratio2:.0%}', '>= 90%',
         ratio2 >= 0.9),
        ('', '454 replies', f'{thr}', 'messages', f'{n}',
         f'{thr / n:.0%}', '<= 10%', thr <= n / 10),
        ('', 'deferred to cur/', f'{len(cur1) + len(cur2)}', '', '', '',
         '0', not cur1 and not cur2),
        ('3', 'ten due messages: connections', f'{connections3}', '', '',
         '', '1', connections3 == 1),
        ('', 'sent oldest first', 'yes' if ordered else 'no', '', '', '',
         'yes', ordered),
        ('4', 'direct, 1 message per transaction', f'{max(ours4):.0f} msg/s',
         'smtplib, one reused connection', f'{max(raw4):.0f} msg/s',
         f'{ratio4:.0%}', '>= 70%', ratio4 >= 0.7),
        ('', 'delivery check: each message once', f'{check.checked}',
         'messages sent', '', '', 'no fault',
         not check.problems and not ERRORS),
    ]
    ok = h.report(rows)
    print('\nrow 4, all rounds (msgs/s): ours ' + ' '.join(
        f'{v:.0f}' for v in ours4) + '; raw ' + ' '.join(
        f'{v:.0f}' for v in raw4))
    for problem in check.problems:
        print('INVALID: ' + problem)
    for record in ERRORS[:5]:
        print(f'LOGGED: {record.levelname} {record.getMessage()[:200]}')
    h.run_footer(start, (own, machine), cpu_seconds())
    return 1 if args.check and not ok else 0


if __name__ == '__main__':
    sys.exit(main())
