"""``bin/demo``: a site's mail, from ZCML to the relay, in a few seconds.

The demo loads ``examples/site.zcml`` (a mailer, a permission-protected
queued delivery and a direct delivery), starts an SMTP relay on 127.0.0.1
(unless ``--relay HOST:PORT`` names a real one), fires the application-start
event that starts the queue processor, sends a few messages from
transactions -- one aborted, one that the relay refuses -- and shows what
the relay received and which events fired.  It cleans up after itself: no
thread, process or temporary directory outlives it.
"""
import argparse
import importlib.resources
import logging
import os
import shutil
import sys
import tempfile
import time

import transaction
import zope.event
from zope.component import getUtility
from zope.configuration import xmlconfig
from zope.processlifetime import ProcessStarting

from zope.sendmail import startup
from zope.sendmail.events import dispatcher
from zope.sendmail.interfaces import IMailDelivery
from zope.sendmail.interfaces import IMailErrorEvent
from zope.sendmail.interfaces import IMailEvent


MESSAGES = [
    # (delivery, recipient, subject, commit?)
    ('Mail', 'ann@example.com', 'Welcome, Ann', True),
    ('Mail', 'bob@example.com', 'Welcome, Bob', True),
    ('Mail', 'carl@example.com', 'Never sent: aborted', False),
    ('Mail', 'reject@example.com', 'Refused by the relay', True),
    ('Direct Mail', 'dora@example.com', 'Sent while committing', True),
]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='demo', description=__doc__.split('\n\n')[1])
    parser.add_argument(
        '--relay', metavar='HOST:PORT',
        help='send to this SMTP relay (no TLS, no login) instead of an'
             ' embedded one on 127.0.0.1')
    args = parser.parse_args(argv)
    if args.relay:
        host, sep, port = args.relay.rpartition(':')
        if not sep or not host or not port.isdigit():
            parser.error(f'--relay must be HOST:PORT, not {args.relay!r}')
        args.relay = (host, int(port))
    return args


def site_zcml(host, port, queue_path):
    """The text of examples/site.zcml, with this run's relay and queue."""
    text = importlib.resources.files('zope.sendmail').joinpath(
        'examples', 'site.zcml').read_text()
    for old, new in (('hostname="127.0.0.1"', f'hostname="{host}"'),
                     ('port="8025"', f'port="{port}"'),
                     ('queuePath="var/mailqueue"',
                      f'queuePath="{queue_path}"')):
        assert old in text, old
        text = text.replace(old, new)
    return text


def main(argv=None, out=sys.stdout):
    """Run the demo; return the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    say = _printer(out)
    events = []
    # What the package logs is part of the show, in the same stream.
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter('    [%(levelname)s] %(message)s'))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger('zope.sendmail')
    logger.addHandler(handler)
    tmp = tempfile.mkdtemp(prefix='zope-sendmail-demo-')
    relay = None
    subscriber = events.append
    try:
        if args.relay is None:
            try:
                from zope.sendmail.testserver import SMTPTestServer
            except ImportError as e:
                say(f'The embedded relay needs aiosmtpd ({e}): install'
                    f" zope.sendmail[test], or give --relay HOST:PORT.")
                return 2
            relay = SMTPTestServer().start()
            host, port = relay.host, relay.port
            say(f'Embedded SMTP relay listening on {host}:{port}'
                f' (it refuses reject@... addresses).')
        else:
            host, port = args.relay
            say(f'Relaying to {host}:{port}.')
        queue_path = os.path.join(tmp, 'mailqueue')
        say('Loading examples/site.zcml ...')
        xmlconfig.string(site_zcml(host, port, queue_path))
        say(f'  queued delivery "Mail" -> {queue_path}')
        say('  direct delivery "Direct Mail"; both protected by'
            ' zope.SendMail')
        say(f'  processor threads running after loading: '
            f'{len(startup.running_threads())}')
        zope.event.subscribers.append(subscriber)
        zope.event.notify(ProcessStarting())
        say(f'Application started: {len(startup.running_threads())}'
            f' queue processor thread(s).')
        say('')
        sent = _send_messages(say)
        committed = sum(1 for m in sent if m[3])
        ok = _watch(say, relay, events, committed)
        _report(say, relay, sent, events)
        return 0 if ok else 1
    finally:
        logger.removeHandler(handler)
        if subscriber in zope.event.subscribers:
            zope.event.subscribers.remove(subscriber)
        startup.stop_processor_threads()
        dispatcher.stop()
        from zope.testing.cleanup import cleanUp
        cleanUp()
        if relay is not None:
            relay.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _printer(out):
    def say(text):
        print(text, file=out, flush=True)
    return say


def _send_messages(say):
    sent = []
    for name, to, subject, commit in MESSAGES:
        delivery = getUtility(IMailDelivery, name)
        message_id = delivery.send(
            'site@example.com', [to],
            f'From: site@example.com\nTo: {to}\nSubject: {subject}\n\n'
            f'Sent by the zope.sendmail demo.\n')
        if commit:
            transaction.commit()
        else:
            transaction.abort()
        say(f'{"committed" if commit else "ABORTED  "} {name!r:14} {to:22}'
            f' <{message_id}>')
        sent.append((message_id, to, subject, commit))
    return sent


def _watch(say, relay, events, committed, timeout=15):
    """Show the messages arriving at the relay until every committed one
    has had its event; return whether they all did in time."""
    say('')
    say('Waiting for the relay ...')
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if relay is not None:
            received = relay.messages
            for message in received[seen:]:
                say(f'  relay received mail for {", ".join(message.rcpt_tos)}')
            seen = len(received)
        dispatcher.flush(1)
        if sum(1 for e in events if IMailEvent.providedBy(e)) >= committed:
            return True
        time.sleep(0.05)
    say(f'  gave up after {timeout} s')
    return False


def _report(say, relay, sent, events):
    names = {message_id: to for message_id, to, subject, commit in sent}
    say('')
    if relay is not None:
        say(f'The relay received {len(relay.messages)} message(s):')
        for message in relay.messages:
            subject = [line for line in message.data.split(b'\r\n')
                       if line.startswith(b'Subject: ')][0]
            say(f'  to {", ".join(message.rcpt_tos):22}'
                f' {subject.decode()}')
    events = [e for e in events if IMailEvent.providedBy(e)]
    say(f'Events ({len(events)}):')
    for event in events:
        who = names.get(event.messageId, event.messageId)
        if IMailErrorEvent.providedBy(event):
            say(f'  IMailErrorEvent for {who}: {event.errorMessage}')
        else:
            say(f'  IMailSentEvent  for {who}')
    say('')
    say('The aborted message was never queued nor sent.  Stopping.')


def console():
    """Entry point of ``bin/demo``."""
    sys.exit(main())


if __name__ == '__main__':
    console()
