"""A queue processor in a process of its own, as on a host of its own, for
bench_stores.py: ``processor_child.py QUEUE PORT``.

It imports everything and opens the queue (a PostgreSQL URL or a Maildir
directory) with a `QueueProcessorThread` relaying to the SMTP sink at
PORT on 127.0.0.1, takes its claims' holder lock, then prints ``READY``
and waits for a line on stdin, so that the processors of one measure start
together and no import is timed.  Then it makes `process_once` passes
(defaults: up to 8 connections, 100 messages each) until a pass sends
nothing -- the queue is empty, or what is left is being sent by another
processor -- and prints one JSON line: the ``time.time()`` of its start
and end, the CPU seconds it used meanwhile, the messages it sent, the
claims it found another's ("busy"), and the warnings the package logged.
An empty line or EOF instead of the go-ahead makes it stop without
sending.
"""
import json
import logging
import os
import sys
import time


def main(queue, port):
    from zope.sendmail.processing.thread import QueueProcessorThread
    from zope.sendmail.smtp.mailer import SMTPMailer
    errors = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = errors.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    thread = QueueProcessorThread(
        mailer=SMTPMailer('127.0.0.1', int(port), no_tls=True),
        queuePath=queue)
    try:
        thread.store.acquire()      # a PostgreSQL store's holder lock
        thread.store.now()          # and a connection in its pool
        print('READY', flush=True)
        if not sys.stdin.readline().strip():
            return
        sent = busy = passes = 0
        start, cpu = time.time(), sum(os.times()[:2])
        while True:
            result = thread.process_once()
            passes += 1
            sent += result.counts['sent']
            busy += result.counts['busy']
            if result.error is not None or not result.counts['sent']:
                break
        end, cpu = time.time(), sum(os.times()[:2]) - cpu
    finally:
        thread.stop(10)             # closes the store: its connections
    print(json.dumps({'start': start, 'end': end, 'cpu': cpu, 'sent': sent,
                      'busy': busy, 'passes': passes,
                      'errors': [r.getMessage() for r in errors]}),
          flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:3])
