"""A queue on PostgreSQL against the durable Maildir queue, and two
processors against one on a PostgreSQL queue.

The benchmark makes a throwaway PostgreSQL cluster of its own
(`zope.sendmail.testserver.postgres.PostgresCluster`, a unix socket in a
temporary directory) with durable settings -- ``fsync``,
``synchronous_commit`` and ``full_page_writes`` on, unlike the tests'
cluster -- since it is compared with a Maildir queue that syncs every
file and folder; the Maildir queues live in the same temporary folder
(TMPDIR), on the same disk.  Each figure is printed beside its reference,
measured in the same run:

1. Enqueue, one message per transaction: ``QueuedMailDelivery(url)``,
   ``send`` and ``transaction.commit()`` (the vote inserts the row and
   commits it), against the same with ``QueuedMailDelivery(path)``
   (durable: the file and ``new/`` synced at each commit).  Target >= 1.0x.
   Below it, for information: a plain psycopg ``INSERT`` of the same bytes
   and ``COMMIT`` per message, the least the database allows.
2. Drain of queued messages to the local SMTP sink (smtp_sink.py, a
   process of its own) by `QueueProcessorThread.process_once` passes
   (defaults: up to 8 connections, 100 messages each), a PostgreSQL queue
   against a Maildir queue holding the same messages.  Target >= 0.8x.
   Below it, for information: the same with a store whose processor
   commits what became of each message without waiting for the server's
   disk (``durable_outcomes=False``: faster; a crash of the server may
   then send the last messages once more).
3. Drain of one PostgreSQL queue through a relay answering every SMTP
   command 10 ms late, by two processors at once against one processor,
   each in a process of its own (processor_child.py), as on hosts of their
   own; the processors start together once imported and connected, and
   the time runs from the first one's start to the last one's end.
   Target >= 1.7x.

Contenders run in alternating order for several rounds, the best round
counts ("paired": the median of the ratios within a round).  Every message
must reach the sink exactly once and the package must log no warning, or
the "delivery check" row fails.  All queues of rows 1 and 2 are filled
before anything is timed (the Maildir queues 1000 messages per
transaction, not durable; the PostgreSQL ones 1000 per transaction), with
``os.sync()`` before each timed part.  Where PostgreSQL cannot run (no
server programs, no psycopg, no user to run the server as), the script
says why and exits with status 0.
"""
import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import transaction

from zope.sendmail.delivery import QueuedMailDelivery

# bin/py runs a script without putting its directory on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _helpers as h  # noqa: E402
from _helpers import FROM  # noqa: E402
from _helpers import MESSAGE  # noqa: E402
from _helpers import RAW_FILE  # noqa: E402
from _helpers import TO  # noqa: E402
from _helpers import cpu_seconds  # noqa: E402
from _helpers import fs_type  # noqa: E402
from _helpers import settle  # noqa: E402


#: The server settings of a durable PostgreSQL (the defaults of a
#: production server, which the tests' cluster turns off).
DURABLE = {'fsync': 'on', 'synchronous_commit': 'on',
           'full_page_writes': 'on'}

ERRORS = []             # warnings and errors logged by the package
check = h.DeliveryChecks()


def make_cluster():
    """A running durable `PostgresCluster`, or (None, why not)."""
    from zope.sendmail.testserver.postgres import ClusterError
    from zope.sendmail.testserver.postgres import PostgresCluster
    from zope.sendmail.testserver.postgres import postgres_unavailable
    reason = postgres_unavailable()
    if reason is not None:
        return None, reason
    try:
        return PostgresCluster(settings=DURABLE).create(), None
    except (ClusterError, OSError) as e:
        return None, f'PostgreSQL cannot run here: {e}'


def server_line(cluster):
    """What the table header says of the server: its version and the
    settings that make it durable, as it reports them."""
    names = ('fsync', 'synchronous_commit', 'full_page_writes',
             'wal_sync_method')
    shown = {n: cluster.execute(f'SHOW {n}')[0][0] for n in names}
    version = cluster.execute('SHOW server_version')[0][0].split()[0]
    return (f'PostgreSQL {version}, unix socket, durable: '
            + ', '.join(f'{n}={v}' for n, v in shown.items()))


def close(delivery):
    """Close a delivery's store (a PostgreSQL store holds connections)."""
    delivery.store.close(5)


# Row 1: enqueue

def enqueue(queue, n):
    """``send`` + ``commit()`` *n* times into *queue*; msgs/s."""
    delivery = QueuedMailDelivery(queue)    # durable, the default
    transaction.abort()
    delivery.send(FROM, TO, MESSAGE)        # opens the folder, or connects
    transaction.commit()
    try:
        start = time.perf_counter()
        for _ in range(n):
            delivery.send(FROM, TO, MESSAGE)
            transaction.commit()
        return n / (time.perf_counter() - start)
    finally:
        close(delivery)


def raw_insert(cluster, n):
    """psycopg: INSERT of the queue file's bytes, *n* times, on one
    connection in autocommit (each its own transaction, one round trip);
    msgs/s."""
    with cluster.connect() as conn:
        conn.execute('CREATE TABLE IF NOT EXISTS bench_raw'
                     ' (id bigserial PRIMARY KEY, message bytea)')
        start = time.perf_counter()
        for _ in range(n):
            conn.execute('INSERT INTO bench_raw (message) VALUES (%s)',
                         (RAW_FILE,))
        return n / (time.perf_counter() - start)


def enqueues(cluster, root, rounds, n):
    """Row 1: name -> msgs/s by round."""
    queues = iter(range(10 ** 6))
    contenders = {
        'pg': lambda: enqueue(cluster.url(f'enqueue{next(queues)}'), n),
        'maildir': lambda: enqueue(
            os.path.join(tempfile.mkdtemp(dir=root), 'queue'), n),
        'raw': lambda: raw_insert(cluster, n),
    }
    for function in contenders.values():
        function()                          # warm up
    rates = {name: [] for name in contenders}
    for i in range(rounds):
        order = list(contenders.items())
        for name, function in (order[::-1] if i % 2 else order):
            settle()
            rates[name].append(function())
    return rates


# Row 2: drain to the local sink

def fill_pg(url, n, per_txn=1000):
    """Queue *n* messages at *url*; their ids."""
    delivery = QueuedMailDelivery(url)
    transaction.abort()
    ids = []
    try:
        for start in range(0, n, per_txn):
            for _ in range(min(per_txn, n - start)):
                ids.append(delivery.send(FROM, TO, MESSAGE))
            transaction.commit()
    finally:
        close(delivery)
    return ids


def drain(queue, port, expected):
    """`process_once` passes until *expected* messages went (as
    `_helpers.drain`, with the store connected beforehand and closed after
    the timing); msgs/s and the number sent."""
    thread = h.processor(queue, port)
    thread.store.acquire()              # connected, holder lock taken
    try:
        sent, start = 0, time.perf_counter()
        while sent < expected:
            result = thread.process_once()
            sent += result.counts['sent']
            if result.error is not None or not sum(result.counts.values()):
                break
        seconds = time.perf_counter() - start
    finally:
        thread.stop(10)
    return expected / seconds, sent


def drains(queues, sink, rounds):
    """Row 2: name -> msgs/s by round (*queues*: per round, a dict of
    name -> (queue, ids); a queue is a URL, a path or a store)."""
    rates = {name: [] for name in queues[0]}
    for i, named in enumerate(queues[:rounds]):
        named = list(named.items())
        for name, (queue, ids) in (named[::-1] if i % 2 else named):
            settle()
            rate, sent = drain(queue, sink.port, len(ids))
            rates[name].append(rate)
            check(f'row 2 {name} drain, round {i + 1}', sink.report(), ids,
                  sent)
    return rates


def fill_drains(cluster, root, rounds, n):
    """The queues of row 2, filled: per round, the PostgreSQL store as
    opened by default, the Maildir queue, and a PostgreSQL store whose
    processor commits what became of a message without waiting for the
    disk (``durable_outcomes=False``)."""
    from zope.sendmail.stores.postgresql import open_postgres_store
    queues = []
    for i in range(rounds):
        url, fast = cluster.url(f'drain{i}'), cluster.url(f'fast{i}')
        queues.append({
            'pg': (url, fill_pg(url, n)),
            'maildir': h.fill(root, n, MESSAGE, FROM, TO),
            'pg, outcomes not waiting': (
                open_postgres_store(fast, durable_outcomes=False),
                fill_pg(fast, n))})
    return queues


# Row 3: processors through a slow relay

def processors(url, port, k, timeout=300):
    """*k* processor_child.py processes draining *url* at once; (msgs/s,
    their reports)."""
    children = [subprocess.Popen(
        [sys.executable, os.path.join(h.HERE, 'processor_child.py'), url,
         str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=h.child_env()) for _ in range(k)]
    try:
        for child in children:
            line = child.stdout.readline().strip()
            if line != 'READY':
                raise RuntimeError(f'a processor did not start: {line!r}')
        for child in children:
            child.stdin.write('go\n')
            child.stdin.flush()
        reports = []
        for child in children:
            out, _ = child.communicate(timeout=timeout)
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    sent = sum(r['sent'] for r in reports)
    seconds = max(r['end'] for r in reports) - min(
        r['start'] for r in reports)
    for r in reports:
        ERRORS.extend(r['errors'])
    return sent / seconds, reports


def scale_out(cluster, slow, rounds, n):
    """Row 3: name -> msgs/s by round, the claims found busy by the
    two processors by round, and name -> the processors' CPU seconds per
    message by round."""
    url = cluster.url('scale')
    rates, busy, cpu = {'two': [], 'one': []}, [], {'two': [], 'one': []}
    for i in range(rounds):
        for name in (('two', 'one') if i % 2 == 0 else ('one', 'two')):
            ids = fill_pg(url, n)
            settle()
            rate, reports = processors(url, slow.port,
                                       2 if name == 'two' else 1)
            rates[name].append(rate)
            cpu[name].append(sum(r['cpu'] for r in reports) / n)
            if name == 'two':
                busy.append(sum(r['busy'] for r in reports))
                shares = [r['sent'] for r in reports]
                if min(shares) < n / 4:
                    ERRORS.append(f'row 3 round {i + 1}: one processor'
                                  f' sent only {min(shares)} of {n}')
            check(f'row 3 {name} processor(s), round {i + 1}',
                  slow.report(), ids, sum(r['sent'] for r in reports))
    return rates, busy, cpu


# The report

def row(number, ours, rates, ref, refs, label, ref_label, target):
    """A row of the table (*rates*, *refs*: msgs/s by round), and the
    note of its paired ratio."""
    best, best_ref = max(rates), max(refs)
    ratio = best / best_ref
    paired = statistics.median(a / b for a, b in zip(rates, refs))
    passed = None if target is None else ratio >= target
    return (number, label, f'{best:.0f} msg/s', ref_label,
            f'{best_ref:.0f} msg/s', f'{ratio:.2f}x',
            '' if target is None else f'>= {target:.1f}x', passed), \
        f'{ours} / {ref} {paired:.2f}x'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer rounds, fewer messages')
    parser.add_argument('--check', action='store_true',
                        help='exit with status 1 when a target is missed')
    args = parser.parse_args(argv)
    # Rows 1 and 2 in many short rounds: a shared machine's load and its
    # disk's sync times drift.
    rounds1, rounds, rounds3, n1, n2, n3 = \
        (4, 3, 2, 150, 500, 300) if args.quick else (10, 8, 4, 300, 1000, 400)
    cluster, why = make_cluster()
    if cluster is None:
        print(f'SKIP: bench_stores.py needs PostgreSQL: {why}')
        return 0
    handler = logging.Handler(logging.WARNING)
    handler.emit = ERRORS.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    root = tempfile.mkdtemp(prefix='zope-sendmail-bench-stores-')
    sink = slow = None
    own, machine, start = *cpu_seconds(), time.perf_counter()
    try:
        print(f'Python {platform.python_version()}'
              f' ({platform.python_implementation()}), {platform.system()},'
              f' {os.cpu_count()} CPUs; {root} is on {fs_type(root)},'
              f' the cluster in {cluster.directory} on'
              f' {fs_type(cluster.directory)}')
        print(f'{server_line(cluster)}; Maildir durable (file and new/'
              f' synced at each commit)')
        print(f'message: {len(RAW_FILE)} bytes in the queue; best of'
              f' {rounds1} rounds (row 1), {rounds} (row 2), {rounds3}'
              f' (row 3)\n')
        fill = fill_drains(cluster, root, rounds, n2)
        settle()
        enq = enqueues(cluster, root, rounds1, n1)
        sink = h.SinkProcess()
        slow = h.SinkProcess(delay=0.01)
        drained = drains(fill, sink, rounds)
        scaled, busy, cpu = scale_out(cluster, slow, rounds3, n3)
    finally:
        for process in (sink, slow):
            if process is not None:
                process.stop()
        cluster.remove()
        shutil.rmtree(root, ignore_errors=True)
        settle()
    rows, notes = zip(*[
        row('1', 'pg', enq['pg'], 'maildir', enq['maildir'],
            'enqueue, 1 message/transaction', 'Maildir, durable', 1.0),
        row('', 'pg', enq['pg'], 'raw', enq['raw'],
            'enqueue, 1 message/transaction', 'psycopg INSERT + COMMIT',
            None),
        row('2', 'pg', drained['pg'], 'maildir', drained['maildir'],
            f'drain {n2} to the local sink', f'Maildir, drain {n2}', 0.8),
        row('', 'pg, outcomes not waiting', drained[
            'pg, outcomes not waiting'], 'maildir', drained['maildir'],
            'the same, durable_outcomes=False', f'Maildir, drain {n2}', None),
        row('3', 'two', scaled['two'], 'one', scaled['one'],
            '2 processors, relay 10 ms/reply', f'1 processor, {n3} msgs',
            1.7),
    ])
    rows = list(rows) + [
        ('', 'delivery check: each message once', f'{check.checked}',
         'messages sent', '', '', 'no fault',
         not check.problems and not ERRORS)]
    ok = h.report(rows)
    print('\nall rounds (msgs/s, in order): ' + '; '.join(
        f'{what} ' + ' '.join(f'{v:.0f}' for v in values)
        for table in (enq, drained, scaled) for what, values in
        table.items()))
    print('paired ratios (median over the rounds): ' + ', '.join(notes))
    print(f'row 3: claims the two processors found the other\'s, by round:'
          f' {", ".join(map(str, busy))}; their CPU per message (ms), by'
          f' round: two ' + ' '.join(f'{v * 1e3:.2f}' for v in cpu['two'])
          + '; one ' + ' '.join(f'{v * 1e3:.2f}' for v in cpu['one']))
    for problem in check.problems:
        print('INVALID: ' + problem)
    if ERRORS:
        print(f'INVALID: the package logged {len(ERRORS)} warning(s) or'
              f' error(s), the first: {ERRORS[0]}')
    h.run_footer(start, (own, machine), cpu_seconds())
    print('(The PostgreSQL server is not our child: its CPU is counted in'
          ' "everything else".)')
    return 1 if args.check and not ok else 0


if __name__ == '__main__':
    sys.exit(main())
