"""How fast zope.sendmail's queue processor drains a queue, against what the
machine allows.

Each figure is printed beside a reference measured in the same run, against
the same SMTP sink (a separate process, see smtp_sink.py), so that the
ratio means something on any machine:

1. Drain of 2000 queued messages by `QueueProcessorThread.process_once`
   (defaults: 8 connections, 100 messages each) against the ceiling: the
   same 2000 message bodies, read beforehand, sent with ``smtplib.SMTP``
   once, ``sendmail`` x 2000, ``quit``.  Target >= 80 %.
2. Drain of 200 messages through a relay that answers every SMTP command
   10 ms late, against zope.sendmail 7.3's way: a connection per message,
   one after the other (connect, EHLO, sendmail, QUIT).  Target >= 10x.
3. Commit -> relay latency with a running thread at its default 3 s
   interval: 50 durable commits of one message each, 50 ms apart; latency
   is the sink's ``time.time()`` on receiving the message minus the time
   just before ``transaction.commit()``.  Beside it, the latency of
   smtplib sending one message on a fresh connection.  Target p50 < 20 ms.
4. Drain time per message at 1000, 4000 and 16000 queued messages, each
   drain in a fresh child process.  Target: 16000 within 1.5x of 1000.
5. Peak RSS of those drains (VmHWM, reset with /proc/self/clear_refs after
   the imports; ``ru_maxrss`` would not do: a spawned child's starts at its
   parent's peak) and, without --quick, the Python heap's peak
   (tracemalloc, in separate drains since it slows them down).  Target:
   16000's peak within 1.5x of 1000's.  (Tracing 16000 would take 30 s;
   the RSS growth shows what it would: the heap grows with the queue.)

Every message must reach the sink exactly once (the sink counts per
Message-Id); otherwise the "delivery check" row fails.  All queues are
filled (durable=False, 1000 messages per transaction; not measured) before
anything is sent, since on ext4 without a journal creating files is slow
for a while after many were deleted; ``os.sync()`` precedes each timed part.
The processor deletes what it sends, so the drains pay for deletions: see
README.txt.
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

from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.delivery import prepare_message

# bin/py runs a script without putting its directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _helpers as h  # noqa: E402
from _helpers import FROM  # noqa: E402
from _helpers import MESSAGE  # noqa: E402
from _helpers import RAW_FILE  # noqa: E402
from _helpers import RAW_MESSAGE  # noqa: E402
from _helpers import TO  # noqa: E402
from _helpers import cpu_seconds  # noqa: E402
from _helpers import fs_type  # noqa: E402
from _helpers import settle  # noqa: E402


ERRORS = []             # warnings and errors logged by the package
check = h.DeliveryChecks()


def throughput(queues, sink, rounds):
    """Row 1: (ours, raw) in msgs/s by round."""
    ours, raw = [], []
    for i, (path, ids) in enumerate(queues[:rounds]):
        bodies = h.read_queue(path)
        for who in (('ours', 'raw') if i % 2 == 0 else ('raw', 'ours')):
            settle()
            if who == 'ours':
                seconds, sent = h.drain(path, sink.port, len(ids))
                ours.append(len(ids) / seconds)
                check(f'row 1 drain, round {i + 1}', sink.report(), ids, sent)
            else:
                raw.append(len(ids) / h.raw_one_connection(sink.port, bodies))
                check(f'row 1 raw smtplib, round {i + 1}', sink.report(), ids)
    return ours, raw


def slow_relay(queue, slow):
    """Row 2: (ours, 7.3's way) in msgs/s through the slow relay."""
    path, ids = queue
    bodies = h.read_queue(path)
    settle()
    seconds, sent = h.drain(path, slow.port, len(ids))
    check('row 2 drain', slow.report(), ids, sent)
    ours = len(ids) / seconds
    raw = len(ids) / h.raw_73(slow.port, bodies)
    check('row 2 one connection per message', slow.report(), ids)
    return ours, raw


def latency(root, sink, n, spacing=0.05):
    """Row 3: (our latencies, commit durations, raw latencies) in s."""
    path = os.path.join(tempfile.mkdtemp(dir=root), 'queue')
    delivery = QueuedMailDelivery(path)         # durable, the default
    thread = h.processor(path, sink.port)       # interval 3 s, the default
    thread.start()
    before, commits = {}, []
    try:
        time.sleep(0.5)                         # its first pass is over
        transaction.abort()
        for _ in range(n):
            start = time.perf_counter()
            message_id = delivery.send(FROM, TO, MESSAGE)
            before[message_id] = time.time()
            transaction.commit()
            commits.append(time.time() - before[message_id])
            time.sleep(max(0.0, spacing - (time.perf_counter() - start)))
        h.wait_sent(path, 15)
    finally:
        thread.stop(15)
    seen = sink.report()
    check('row 3 commits', seen, list(before))
    ours = [seen[0][i][1] - t for i, t in before.items() if i in seen[0]]
    commits = [c for i, c in zip(before, commits) if i in seen[0]]
    prepared = [prepare_message(MESSAGE) for _ in range(n)]
    starts = []                 # the same, by smtplib on a new connection
    for _, message in prepared:
        starts.append(time.time())
        h.raw_73(sink.port, [(FROM, list(TO), message)])
        time.sleep(spacing)
    seen = sink.report()
    ids = [i for i, _ in prepared]
    raw = [seen[0][i][1] - t for i, t in zip(ids, starts) if i in seen[0]]
    check('row 3 raw', seen, ids)
    return ours, commits, raw


def scaling(queues, sink, trace_queues):
    """Rows 4 and 5: size -> the drain child's figures.  A size drained
    twice (the smallest, first and last) counts the mean of its times, so
    that noise drifting during the run weighs on both ends alike."""
    results = {}
    for path, ids in queues:
        settle()
        out = h.drain_in_child(path, sink.port, len(ids))
        check(f'row 4 drain of {len(ids)}', sink.report(), ids, out['sent'])
        ERRORS.extend(['(in a drain child)'] * out['errors'])
        entry = results.setdefault(len(ids), dict(out, times=[]))
        entry['times'].append(out['seconds'])
        entry['seconds'] = statistics.mean(entry['times'])
    for path, ids in trace_queues:
        settle()
        out = h.drain_in_child(path, sink.port, len(ids), trace=True)
        check(f'row 5 traced drain of {len(ids)}', sink.report(), ids,
              out['sent'])
        results[len(ids)]['heap_peak'] = out['heap_peak']
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer rounds, smaller queues')
    parser.add_argument('--check', action='store_true',
                        help='exit with status 1 when a target is missed')
    args = parser.parse_args(argv)
    quick = args.quick
    rounds, n1, n2, n3 = (2, 1000, 80, 30) if quick else (5, 2000, 200, 50)
    sizes = (500, 2000, 8000) if quick else (1000, 4000, 16000)
    traced = () if quick else sizes[:2]
    handler = logging.Handler(logging.WARNING)
    handler.emit = ERRORS.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    root = tempfile.mkdtemp(prefix='zope-sendmail-bench-queue-')
    print(f'Python {platform.python_version()}'
          f' ({platform.python_implementation()}), {platform.system()},'
          f' {os.cpu_count()} CPUs; {root} is on {fs_type(root)}')
    print(f'message: {len(RAW_FILE)} bytes in the queue file, '
          f'{len(RAW_MESSAGE)} bytes of SMTP DATA; row 1: best of {rounds}'
          f' rounds\n')
    own, machine, start = *cpu_seconds(), time.perf_counter()
    sink = slow = None
    try:
        fill = [h.fill(root, n, MESSAGE, FROM, TO)
                for n in [n1] * rounds + [n2] + list(sizes) + [sizes[0]]
                + list(traced)]
        settle()
        sink = h.SinkProcess()
        slow = h.SinkProcess(delay=0.01)
        lat, commits, raw_lat = latency(root, sink, n3)
        ours1, raw1 = throughput(fill[:rounds], sink, rounds)
        ours2, raw2 = slow_relay(fill[rounds], slow)
        scale = scaling(fill[rounds + 1:rounds + 2 + len(sizes)], sink,
                        fill[rounds + 2 + len(sizes):])
    finally:
        for process in (sink, slow):
            if process is not None:
                process.stop()
        shutil.rmtree(root, ignore_errors=True)
        settle()
    small, big = scale[sizes[0]], scale[sizes[-1]]
    per = {n: 1e6 * scale[n]['seconds'] / n for n in sizes}
    mb = 1 / 1024
    r1, r4 = max(ours1) / max(raw1), per[sizes[-1]] / per[sizes[0]]
    r5 = big['rss_kb'] / small['rss_kb']
    p50, p95 = h.pct(lat, .5) * 1e3, h.pct(lat, .95) * 1e3
    rows = [
        ('1', f'drain {n1}, 8 connections', f'{max(ours1):.0f} msg/s',
         'raw smtplib, one connection', f'{max(raw1):.0f} msg/s',
         f'{r1:.0%}', '>= 130%', r1 >= 1.3),
        ('2', f'drain {n2}, relay 10 ms/reply', f'{ours2:.1f} msg/s',
         '7.3: a connection per message', f'{raw2:.1f} msg/s',
         f'{ours2 / raw2:.1f}x', '>= 10x', ours2 / raw2 >= 10),
        ('3', f'commit -> relay, p50 of {n3}', f'{p50:.1f} ms',
         'raw smtplib, new connection', f'{h.pct(raw_lat, .5) * 1e3:.1f} ms',
         f'{p50 / (h.pct(raw_lat, .5) * 1e3):.1f}x', '< 20 ms', p50 < 20),
        ('', 'commit -> relay, p95', f'{p95:.1f} ms',
         'raw smtplib, new connection', f'{h.pct(raw_lat, .95) * 1e3:.1f} ms',
         '', '', None),
        ('', 'of which commit(), p50', f'{h.pct(commits, .5) * 1e3:.1f} ms',
         '', '', '', '', None),
        ('4', f'drain {sizes[-1]}, per message', f'{per[sizes[-1]]:.0f} us',
         f'drain {sizes[0]}, per message', f'{per[sizes[0]]:.0f} us',
         f'{r4:.2f}x', '<= 1.5x', r4 <= 1.5),
        ('', f'drain {sizes[1]}, per message', f'{per[sizes[1]]:.0f} us',
         f'drain {sizes[0]}, per message', f'{per[sizes[0]]:.0f} us',
         f'{per[sizes[1]] / per[sizes[0]]:.2f}x', '', None),
        ('5', f'peak RSS, drain {sizes[-1]}', f'{big["rss_kb"] * mb:.1f} MB',
         f'peak RSS, drain {sizes[0]}', f'{small["rss_kb"] * mb:.1f} MB',
         f'{r5:.2f}x', '<= 1.5x', r5 <= 1.5),
    ]
    growth = {n: (scale[n]['rss_kb'] - scale[n]['rss_before_kb']) * mb
              for n in sizes}
    rows.append(('', f'RSS growth, drain {sizes[-1]}',
                 f'{growth[sizes[-1]]:.1f} MB', f'drain {sizes[1]} / '
                 f'{sizes[0]}', f'{growth[sizes[1]]:.1f} / '
                 f'{growth[sizes[0]]:.1f} MB', '', '', None))
    if traced:
        heap = {n: scale[n]['heap_peak'] / 2**20 for n in traced}
        rows.append(('', f'heap peak, drain {traced[-1]}',
                     f'{heap[traced[-1]]:.1f} MB', f'heap peak, drain '
                     f'{traced[0]}', f'{heap[traced[0]]:.1f} MB',
                     f'{heap[traced[-1]] / heap[traced[0]]:.1f}x', '', None))
    rows.append(('', 'delivery check: each message once', f'{check.checked}',
                 'messages sent', '', '', 'no fault',
                 not check.problems and not ERRORS))
    ok = h.report(rows)
    print('\nrow 1, all rounds (msgs/s): ours ' + ' '.join(
        f'{v:.0f}' for v in ours1) + '; raw ' + ' '.join(
        f'{v:.0f}' for v in raw1) + f'; paired ratio median '
        f'{statistics.median(o / r for o, r in zip(ours1, raw1)):.0%}')
    worst = max(range(len(lat)), key=lat.__getitem__)
    print(f'row 3 latencies (ms): min {min(lat) * 1e3:.1f}, max '
          f'{lat[worst] * 1e3:.1f} (of which commit() '
          f'{commits[worst] * 1e3:.1f}); raw min {min(raw_lat) * 1e3:.1f}')
    print('row 4 drains (s): ' + ', '.join(
        f'{n}: ' + ' and '.join(f'{t:.2f}' for t in scale[n]['times'])
        for n in sizes))
    for problem in check.problems:
        print('INVALID: ' + problem)
    if ERRORS:
        print(f'INVALID: the package logged {len(ERRORS)} warning(s) or'
              f' error(s)')
    h.run_footer(start, (own, machine), cpu_seconds())
    return 1 if args.check and not ok else 0


if __name__ == '__main__':
    sys.exit(main())
