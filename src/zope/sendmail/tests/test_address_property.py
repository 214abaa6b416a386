"""Property: whatever ``send()`` accepts is delivered to exactly the
addresses given, and to no other.

Addresses are generated biased toward what has gone wrong or could: the
code points that the IDNA mapping turns into separators, full-width forms,
controls, quotes and commas in display names, IDNs, non-ASCII local parts
(the relay offers SMTPUTF8), and strings that are no address at all.  For
each list, ``send()`` either raises ValueError or TypeError, or the relay
hears ``RCPT TO`` exactly the wire forms of the recipients given, in order,
each with a domain that is a host name, and ``MAIL FROM`` the sender's;
through a real SMTP server, for queued delivery (a queue processor pass)
and direct delivery.  Derandomized, without an example database: every run
tries the same examples.
"""
import collections
import os
import re
import shutil
import tempfile
import unittest

import idna
import transaction
import zope.event
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from zope.sendmail.testserver import make_layer
from zope.sendmail.tests.support.addresses import LOOK_ALIKES


UTF8Layer = make_layer('UTF8Layer', 'SMTP test server offering SMTPUTF8.',
                       smtputf8=True)

EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow])

PLAIN = 'abcdefghijklmnopqrstuvwxyz0123456789'
SPECIALS = list(',@<>;:()[]"\\ .')
CONTROLS = ['\x00', '\x07', '\x08', '\x1b', '\r', '\n', '\t', '\x7f',
            '\x85', '\x9b', '\u2028']
OTHERS = ['\u202e', '\u200b', '\u00ad', '\ufeff', 'ü', 'ß', '日', '\uff0e',
          '\u3002', '\uff0d', '\uff3f', "'", '+', '_', '-', '=', '/']
DANGER = list(LOOK_ALIKES) + SPECIALS + CONTROLS + OTHERS


def clean(min_size, max_size):
    return st.text(alphabet=PLAIN, min_size=min_size, max_size=max_size)


@st.composite
def dirty(draw, min_size, max_size):
    """Plain text with one character of trouble somewhere in it."""
    base = draw(clean(max(min_size - 1, 0), max_size - 1))
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(st.sampled_from(DANGER)) + base[at:]


def weighted(*choices):
    """One of the strategies *choices* (``(weight, strategy)`` pairs), by
    weight (`st.one_of` takes each the same, however often it is given).
    """
    return st.sampled_from([strategy for weight, strategy in choices
                            for _ in range(weight)]).flatmap(lambda s: s)


def text(min_size, max_size):
    # Plain three times out of four, so that many addresses are taken.
    return weighted((3, clean(min_size, max_size)),
                    (1, dirty(min_size, max_size)))


def quoted(value):
    return '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')


domains = st.one_of(
    st.lists(text(1, 6), min_size=1, max_size=3).map('.'.join).map(
        lambda labels: labels + '.org'),
    text(1, 6).map(lambda label: label + '.bücher.example'),
    st.sampled_from(['bücher.example', 'straße.de', '例え.jp', 'x.org.',
                     'EXAMPLE.COM', 'my_host', '_dmarc.x.org', '[127.0.0.1]',
                     '[IPv6:::1]', 'xn--bcher-kva.example', 'x\uff0ey.org']))
locals_ = st.one_of(text(1, 6), text(0, 5).map(quoted),
                    st.sampled_from(['jörg', "o'hara", 'a..b', 'a.']))


# Display names that look like addresses or lists of them.
names = weighted((3, text(1, 6)), (1, st.sampled_from([
    'Doe, Jane', 'a@evil.org', 'a@evil.org, b@evil.org', '<a@evil.org>',
    'Ann "The" Lee', 'x\\y', 'Jörg, Ünïcödé', 'Ann (Lee)', ':;'])))


@st.composite
def well_formed(draw):
    """``(address, local part, domain)``: an addr-spec, with a display
    name (quoted where it must be) or a comment."""
    local, domain = draw(locals_), draw(domains)
    addr_spec = f'{local}@{domain}'
    form = draw(st.sampled_from(['bare', 'name', 'quoted name', 'comment']))
    name = draw(names)
    if form == 'name' and not re.search(r'[][\\()<>@,:;".]', name):
        address = f'{name} <{addr_spec}>'
    elif form in ('name', 'quoted name'):
        address = f'{quoted(name)} <{addr_spec}>'
    elif form == 'comment' and not re.search(r'[()\\]', name):
        address = f'{addr_spec} ({name})'
    else:
        address = addr_spec
    return address, local, domain


# Anything at all, made of the same pieces: the oracle is then only that
# the relay hears the wire forms of what was accepted.
raw = st.text(alphabet=PLAIN[:3] + ''.join(DANGER) + '@<>"', min_size=1,
              max_size=16).map(lambda s: (s, None, None))
addresses = weighted((3, well_formed()), (1, raw))

_HOST_NAME = re.compile(r'[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?'
                        r'|\[[0-9.]+\]|\[IPv6:[0-9a-fA-F:.]+\]')
_LOCAL_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+|\"[ -~]*\"")
_RCPT = re.compile(r'C: rcpt to:<(.*)>$', re.I)
_MAIL = re.compile(r'C: mail from:<(.*)>( .*)?$', re.I)


def expected_domain(domain):
    """*domain* as the relay must hear it, by the `idna` package's own
    encoding of the whole name; None where that refuses a name that has
    ASCII labels IDNA does not allow (``_dmarc``)."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode('ascii')
    except idna.IDNAError:
        return None


class AddressPropertyTests(unittest.TestCase):

    layer = UTF8Layer

    def setUp(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        from zope.sendmail.events import dispatcher
        transaction.abort()
        saved = zope.event.subscribers[:]
        zope.event.subscribers[:] = []
        self.addCleanup(zope.event.subscribers.__setitem__, slice(None),
                        saved)
        self.addCleanup(dispatcher.stop)
        self.addCleanup(clear_all)
        self.addCleanup(transaction.abort)
        self.outcomes = collections.Counter()

    def mailer(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        return SMTPMailer(server.host, server.port, timeout=5)

    def check(self, send, sender, recipients):
        """Send through *send*; assert the property; return what became
        of the message: ``'refused'`` by send(), ``'sent'``, or ``'sender
        refused'`` by the relay (which then hears no recipient)."""
        from zope.sendmail.addresses import wire_address
        server = self.layer.server
        server.reset()
        toaddrs = [address for address, local, domain in recipients]
        try:
            send(sender[0], toaddrs)
        except (ValueError, TypeError):
            transaction.abort()
            self.assertEqual(server.transcript(), [])
            return 'refused'
        heard = server.transcript()
        [mail] = [i for i, line in enumerate(heard) if _MAIL.match(line)]
        self.assertEqual(_MAIL.match(heard[mail]).group(1),
                         wire_address(sender[0])[0], heard)
        rcpts = [m.group(1) for m in map(_RCPT.match, heard) if m]
        if not heard[mail + 1].startswith('S: 250'):
            # The test relay refuses some senders (x.org.): no RCPT.
            self.assertEqual(rcpts, [], heard)
            return 'sender refused'
        # Exactly the recipients given, each once, none added or cut.
        self.assertEqual(rcpts, [wire_address(a)[0] for a in toaddrs],
                         heard)
        for wire, (address, local, domain) in zip(rcpts, recipients):
            if '@' not in wire:  # a local name, which the relay completes
                self.assertTrue(_LOCAL_NAME.fullmatch(wire), wire)
                continue
            self.assertTrue(_HOST_NAME.fullmatch(wire.rpartition('@')[2]),
                            wire)
            if local is not None and expected_domain(domain) is not None:
                # Independently of our encoding: what was generated.
                self.assertEqual(wire, f'{local}@{expected_domain(domain)}')
        return 'sent'

    def queued(self, fromaddr, toaddrs):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.processing.thread import QueueProcessorThread
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-property-')
        try:
            queue = os.path.join(tmp, 'queue')
            QueuedMailDelivery(queue, durable=False).send(
                fromaddr, toaddrs, b'Subject: x\n\nbody\n')
            transaction.commit()
            thread = QueueProcessorThread(queuePath=queue,
                                          mailer=self.mailer())
            result = thread.process_once()
            self.assertEqual(sum(result.counts.values()), 1, result)
        finally:
            shutil.rmtree(tmp)

    def direct(self, fromaddr, toaddrs):
        from zope.sendmail.delivery import DirectMailDelivery
        DirectMailDelivery(self.direct_mailer).send(
            fromaddr, toaddrs, b'Subject: x\n\nbody\n')
        transaction.commit()

    def run_property(self, send):
        @EXAMPLES
        @given(sender=weighted((1, st.just(('', None, None))), (4, addresses)),
               recipients=st.lists(addresses, min_size=1, max_size=3))
        def delivered_to_exactly_those_given(sender, recipients):
            self.outcomes[self.check(send, sender, recipients)] += 1

        delivered_to_exactly_those_given()
        # Neither outcome is vacuous.
        self.assertGreater(self.outcomes['sent'], 40, self.outcomes)
        self.assertGreater(self.outcomes['refused'], 40, self.outcomes)

    def test_queued_delivery(self):
        self.run_property(self.queued)

    def test_direct_delivery(self):
        self.direct_mailer = self.mailer()
        self.run_property(self.direct)
