"""A queue processor in a process of its own, for test_processes.

    python -m zope.sendmail.functional.tests.processor_main QUEUE HOST PORT
        [--until-empty] [--connections N] [--interval S]
        [--lease auto|on|off] [--lease-timeout S] [--lease-renew S]
        [--lease-margin S] [--stop-timeout S]

Sends the queue at QUEUE through the SMTP relay at HOST:PORT.  With
``--until-empty`` it runs passes until one leaves no message in ``new/``
and ``cur/`` (at most `UNTIL_EMPTY_LIMIT` seconds; exit status 1 if the
queue is still not empty then) and prints the passes' summed counts
('sent', 'busy'...) as a JSON object on stdout; otherwise it runs a
`QueueProcessorThread` until SIGTERM, stops it (waiting at most
``--stop-timeout`` seconds), prints ``{"stopped": true/false, "seconds":
how long stop() took}`` on stdout and exits 0 if it stopped.  QUEUE may be
a PostgreSQL URL, except with ``--until-empty``.
"""
import argparse
import collections
import json
import logging
import os
import signal
import sys
import threading
import time

from zope.sendmail.smtp.mailer import SMTPMailer
from zope.sendmail.processing.thread import QueueProcessorThread


UNTIL_EMPTY_LIMIT = 120


def queue_is_empty(queue):
    return not any(name for sub in ('new', 'cur')
                   for name in os.listdir(os.path.join(queue, sub))
                   if not name.startswith('.'))


def main(argv=None):
    parser = argparse.ArgumentParser(prog='processor_main')
    parser.add_argument('queue')
    parser.add_argument('host')
    parser.add_argument('port', type=int)
    parser.add_argument('--until-empty', action='store_true')
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--interval', type=float, default=3.0)
    parser.add_argument('--lease', default='auto')
    parser.add_argument('--lease-timeout', type=float, default=120.0)
    parser.add_argument('--lease-renew', type=float, default=10.0)
    parser.add_argument('--lease-margin', type=float, default=20.0)
    parser.add_argument('--stop-timeout', type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format=f'processor_main[{os.getpid()}] %(levelname)s %(name)s:'
               f' %(message)s')
    thread = QueueProcessorThread(
        interval=args.interval, queuePath=args.queue,
        mailer=SMTPMailer(args.host, args.port, timeout=10),
        connections=args.connections, lease=args.lease,
        lease_timeout=args.lease_timeout, lease_renew=args.lease_renew,
        lease_margin=args.lease_margin)
    if args.until_empty:
        deadline = time.monotonic() + UNTIL_EMPTY_LIMIT
        total = collections.Counter()
        while True:
            result = thread.process_once()
            total.update(result.counts)
            if queue_is_empty(args.queue):
                print(json.dumps(total), flush=True)
                return 0
            if time.monotonic() > deadline:
                print(f'processor_main: queue {args.queue} not empty after'
                      f' {UNTIL_EMPTY_LIMIT} s; last pass: {result!r}',
                      file=sys.stderr)
                return 1
            # Messages busy in another processor, or deferred: look again.
            time.sleep(0.05)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    thread.start()
    while not stopping.wait(0.5):
        pass
    start = time.monotonic()
    stopped = thread.stop(args.stop_timeout)
    print(json.dumps({'stopped': stopped,
                      'seconds': time.monotonic() - start}), flush=True)
    if not stopped:
        print('processor_main: the processor thread did not stop',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
