"""What sending costs in memory, measured in a process of its own.

    python -m zope.sendmail.functional.tests.memory_probe \
        SCENARIO HOST PORT SIZE [QUEUE]

Runs one SCENARIO against the SMTP relay at HOST:PORT (which runs in
another process: its memory is not this one's) and prints a JSON object:
``size`` (bytes of the message), ``before_kb`` (peak RSS when the
measurement starts), ``peak_kb`` (peak RSS at the end), ``seconds`` and
``outcome``.  The peak RSS is Linux's VmHWM, reset to the current RSS when
the measurement starts (``/proc/self/clear_refs``), so that imports and
set-up do not count.  Scenarios:

``processor``
    one pass of a `QueueProcessor` over QUEUE, which holds one message of
    SIZE bytes: reading the queue file, parsing it and sending it.
``direct``
    a `DirectMailDelivery`: ``send()`` of a message of SIZE bytes with LF
    line endings and no Message-Id (the most work for ``send()``), then
    the commit, which sends it.  The message is built before the
    measurement starts: the caller's own copy does not count.
``queued``
    a `QueuedMailDelivery` into QUEUE: ``send()`` as for ``direct``, and
    the commit, which moves it into ``new/``.
``endless``
    a connection to a relay answering EHLO without end (SIZE unused):
    ``outcome`` is the error, ``seconds`` the time to it.
"""
import json
import os
import sys
import time


def peak_rss_kb():
    """VmHWM: the peak RSS since the last reset."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise RuntimeError('no VmHWM in /proc/self/status')


def reset_peak():
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def message_of(size):
    """A message of *size* bytes, LF line endings, no Message-Id."""
    line = b'x' * 75 + b'\n'
    head = b'Subject: big\n\n'
    return head + line * ((size - len(head)) // len(line))


def main(scenario, host, port, size, queue=None):
    import transaction

    from zope.sendmail.delivery import DirectMailDelivery
    from zope.sendmail.delivery import QueuedMailDelivery
    from zope.sendmail.interfaces import MailDeliveryError
    from zope.sendmail.stores.maildir.folder import Maildir
    from zope.sendmail.smtp.mailer import SMTPMailer
    from zope.sendmail.processing.processor import QueueProcessor
    mailer = SMTPMailer(host, int(port), timeout=30)
    size = int(size)
    message = message_of(size) if scenario in ('direct', 'queued') else b''
    size = len(message) or size
    reset_peak()
    before = peak_rss_kb()
    start = time.monotonic()
    if scenario == 'processor':
        result = QueueProcessor(mailer, Maildir(queue),
                                notify=lambda event: None).process()
        outcome = dict(result.counts)
    elif scenario in ('direct', 'queued'):
        delivery = DirectMailDelivery(mailer) if scenario == 'direct' \
            else QueuedMailDelivery(queue)
        delivery.send('alice@example.com', ['bob@example.com'], message)
        transaction.commit()
        outcome = 'committed'
    elif scenario == 'endless':
        try:
            mailer.connect().close()
            outcome = 'connected'
        except MailDeliveryError as e:
            outcome = f'{type(e).__name__}: {e}'
    else:
        raise SystemExit(f'unknown scenario {scenario!r}')
    print(json.dumps({
        'size': size, 'before_kb': before, 'peak_kb': peak_rss_kb(),
        'seconds': time.monotonic() - start, 'outcome': outcome,
        'pid': os.getpid()}), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:])
