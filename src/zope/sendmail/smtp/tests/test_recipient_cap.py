"""A relay capping the recipients of a transaction (452 4.5.3): the rest
go in further transactions on the same connection, each recipient once."""
import os
import smtplib
import socket
import sys
import time
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.smtp.connectioncache import clear_all
from zope.sendmail.tests.support.processor import ProcessorTestBase
from zope.sendmail.testserver import SMTPServerLayer


MESSAGE = b'Subject: many\r\n\r\nbody\r\n'
CAP = (452, b'4.5.3 Too many recipients')


def addresses(count, prefix='r'):
    return [f'{prefix}{n}@example.com' for n in range(count)]


def drop_second_data():
    """A new SMTP client class whose connection drops at its second DATA
    (each class counts its own)."""
    class DropSecondData(smtplib.SMTP):
        calls = 0

        def data(self, msg):
            DropSecondData.calls += 1
            if DropSecondData.calls == 2:
                # Cut the TCP connection (smtplib's file keeps the
                # descriptor of a socket merely closed).
                self.sock.shutdown(socket.SHUT_RDWR)
            return super().data(msg)
    return DropSecondData


class _Mailers:

    def _mailer(self, smtp=None):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        mailer = SMTPMailer(server.host, server.port, timeout=5)
        if smtp is not None:
            mailer.smtp = smtp  # 7.3's attribute: the smtplib class used
        return mailer

    def _connect(self, smtp=None):
        connection = self._mailer(smtp).connect()
        self.addCleanup(connection.close)
        return connection

    def _received(self):
        """Every recipient the server got the message for, in order."""
        return [a for m in self.layer.server.messages for a in m.rcpt_tos]


class ConnectionTests(_Mailers, unittest.TestCase):

    layer = SMTPServerLayer

    def test_the_rest_go_in_further_transactions_on_one_connection(self):
        server = self.layer.server
        server.max_recipients = 100
        to = addresses(250)
        connection = self._connect()
        self.assertIsNone(connection.max_recipients)
        self.assertEqual(connection.send('a@example.com', to, MESSAGE), {})
        self.assertEqual(self._received(), to)  # each once, in order
        self.assertEqual([len(m.rcpt_tos) for m in server.messages],
                         [100, 100, 50])
        self.assertEqual(server.connections, 1)
        self.assertEqual(connection.max_recipients, 100)
        self.assertEqual(server.capped, 1)
        # The next message is split at once: no 452 any more.
        self.assertEqual(connection.send('a@example.com', to[:150],
                                         MESSAGE), {})
        self.assertEqual(server.capped, 1)
        self.assertEqual(len(server.messages), 5)

    def test_refused_recipients_reported_once_the_others_sent_once(self):
        server = self.layer.server
        server.max_recipients = 3
        to = [a for n in range(5) for a in (f'ok{n}@example.com',
                                            f'reject{n}@example.com')]
        refused = self._connect().send('a@example.com', to, MESSAGE)
        self.assertEqual(sorted(refused), [f'reject{n}@example.com'
                                           for n in range(5)])
        self.assertEqual({c for c, r in refused.values()}, {550})
        self.assertEqual(self._received(),
                         [f'ok{n}@example.com' for n in range(5)])

    def test_a_cap_at_the_first_recipient_is_temporary_and_no_loop(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        server = self.layer.server
        server.max_recipients = 0
        connection = self._connect()
        with self.assertRaises(TemporaryDeliveryError) as caught:
            connection.send('a@example.com', addresses(5), MESSAGE)
        self.assertEqual(caught.exception.recipients,
                         dict.fromkeys(addresses(5), CAP))
        self.assertEqual(server.capped, 1)  # asked once, not five times
        mails = [line for line in server.transcript()
                 if line.upper().startswith('C: MAIL')]
        self.assertEqual(len(mails), 1)
        self.assertIsNone(connection.max_recipients)
        # The connection goes on.
        server.max_recipients = None
        self.assertEqual(connection.send('a@example.com', ['b@example.com'],
                                         MESSAGE), {})

    def test_a_lower_cap_than_remembered(self):
        server = self.layer.server
        server.max_recipients = 2
        connection = self._connect()
        connection.max_recipients = 3  # as a schedule remembered it
        self.assertEqual(connection.send('a@example.com', addresses(7),
                                         MESSAGE), {})
        self.assertEqual(self._received(), addresses(7))
        self.assertEqual(connection.max_recipients, 2)

    def test_a_cap_at_the_first_recipient_of_a_later_transaction(self):
        # The relay takes two, then (its count is per hour, say) none: the
        # first two have the message, the others are refused for now.
        class CapLater(smtplib.SMTP):
            calls = 0

            def rcpt(self, recip, options=()):
                CapLater.calls += 1
                if CapLater.calls > 3:
                    return CAP
                return super().rcpt(recip, options)

        self.layer.server.max_recipients = 2
        to = addresses(5)
        refused = self._connect(CapLater).send('a@example.com', to, MESSAGE)
        self.assertEqual(refused, dict.fromkeys(to[2:], CAP))
        self.assertEqual(self._received(), to[:2])

    def test_a_transaction_lost_after_another_went_through(self):
        # The connection drops at the second DATA: the first two have the
        # message; the others are refused for now, never sent twice.
        DropSecondData = drop_second_data()
        self.layer.server.max_recipients = 2
        to = addresses(5)
        refused = self._connect(DropSecondData).send('a@example.com', to,
                                                     MESSAGE)
        self.assertEqual(sorted(refused), to[2:])
        code, reply = refused[to[4]]
        self.assertEqual(code, 451)
        self.assertTrue(reply.startswith(b'not sent: sending via 127.0.0.1'),
                        reply)
        self.assertEqual(self._received(), to[:2])

    def test_data_refused_after_another_went_through(self):
        server = self.layer.server

        class RefuseSecondData(smtplib.SMTP):
            calls = 0

            def data(self, msg):
                RefuseSecondData.calls += 1
                if RefuseSecondData.calls == 2:
                    server.fail_data(554, '5.6.0 content rejected')
                return super().data(msg)

        server.max_recipients = 2
        to = addresses(5)
        refused = self._connect(RefuseSecondData).send('a@example.com', to,
                                                       MESSAGE)
        # Refused as the message was, for those of that transaction and
        # those after it alike: as for one transaction.
        self.assertEqual(refused, dict.fromkeys(
            to[2:], (554, b'5.6.0 content rejected')))
        self.assertEqual(self._received(), to[:2])


class DirectDeliveryTests(_Mailers, unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.events = []
        import zope.event
        zope.event.subscribers.append(self.events.append)
        self.addCleanup(zope.event.subscribers.remove, self.events.append)
        self.log = InstalledHandler(*LOGGERS)
        self.addCleanup(self.log.uninstall)

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()
        transaction.abort()
        clear_all()

    def test_one_transaction_many_recipients(self):
        from zope.sendmail.delivery import DirectMailDelivery
        from zope.sendmail.events import dispatcher
        from zope.sendmail.interfaces import IMailSentEvent
        server = self.layer.server
        server.max_recipients = 100
        to = addresses(240) + ['reject@example.com']
        message_id = DirectMailDelivery(self._mailer()).send(
            'a@example.com', to, MESSAGE)
        transaction.commit()
        self.assertEqual(self._received(), to[:-1])
        self.assertEqual(server.connections, 1)
        self.assertEqual(server.capped, 1)
        dispatcher.flush(5)
        kinds = [(type(e).__name__, e.messageId) for e in self.events]
        self.assertEqual(kinds, [('MailSentEvent', message_id),
                                 ('MailErrorEvent', message_id)])
        self.assertTrue(IMailSentEvent.providedBy(self.events[0]))
        self.assertIn('reject@example.com: 550', self.events[1].errorMessage)
        info = [r.getMessage() for r in self.log.records
                if r.levelname == 'INFO']
        self.assertIn(f'message {message_id} from a@example.com to'
                      f' r0@example.com, r1@example.com, r2@example.com'
                      f' and 237 more sent', info)


#: The loggers of the package's own work (not of its test server).
LOGGERS = ('zope.sendmail.processing.processor',
           'zope.sendmail.processing.disposition',
           'zope.sendmail.smtp.transaction', 'zope.sendmail.smtp.connection',
           'zope.sendmail.delivery', 'zope.sendmail.smtp.mailer')


class ProcessorTests(_Mailers, ProcessorTestBase):

    def setUp(self):
        super().setUp()
        self.log.uninstall()
        self.log = InstalledHandler(*LOGGERS)

    def test_ten_thousand_recipients_in_one_pass_over_one_connection(self):
        server = self.layer.server
        server.max_recipients = 100
        to = addresses(10000)
        [message_id] = self._queue(to)
        processor = self._makeOne()
        start = time.monotonic()
        result = processor.process()
        seconds = time.monotonic() - start
        self.assertEqual(dict(result.counts), {'sent': 1}, result)
        self.assertEqual(self._received(), to)  # each once
        self.assertEqual(len(server.messages), 100)
        self.assertEqual(server.connections, 1)
        self.assertEqual(server.capped, 1)
        self.assertEqual(processor.schedule.max_recipients, 100)
        self.assertEqual(self._messages('new') + self._messages('cur'), [])
        self.assertEqual(self._events(), [('MailSentEvent', message_id,
                                           None)])
        longest = max(len(r.getMessage()) for r in self.log.records)
        self.assertLess(longest, 500)
        self.assertLess(seconds, 120)  # a bound, not a target
        print(f'\n{self.id()}: 10 000 recipients, cap 100: {seconds:.1f} s,'
              f' {server.connections} connection, {len(server.messages)}'
              f' transactions; longest log line {longest} characters',
              file=sys.stderr)

    def test_logs_name_a_few_and_a_count_events_name_all(self):
        server = self.layer.server
        server.max_recipients = 100
        to = [a for n in range(1000) for a in (
            f'r{n}@example.com', f'reject{n}@example.com',
            f'tempfail{n}@example.com')]
        [message_id] = self._queue(to)
        result = self._makeOne().process()
        self.assertEqual(dict(result.counts), {'deferred': 1}, result)
        self.assertEqual(self._received(), to[::3])
        [error, sent] = sorted(self.events, key=lambda e: type(e).__name__)
        self.assertEqual((type(sent).__name__, type(error).__name__),
                         ('MailSentEvent', 'MailErrorEvent'))
        self.assertEqual({sent.messageId, error.messageId}, {message_id})
        # The event names every recipient refused for good.
        self.assertEqual(error.errorMessage.count('@example.com: 550'), 1000)
        lines = [r.getMessage() for r in self.log.records]
        self.assertLess(max(map(len, lines)), 500, lines)
        [lost] = [line for line in lines if ': 550 ' in line]
        self.assertTrue(lost.startswith(
            f'message {message_id} from alice@example.com to r0@example.com,'
            f' reject0@example.com, tempfail0@example.com and 2997 more:'
            f' recipients refused: reject0@example.com: 550'), lost)
        self.assertTrue(lost.endswith(' and 997 more'), lost)
        # The retry file too: those left, briefly.
        [name] = self._messages('cur')
        with open(os.path.join(self.queue, 'cur', '.retry-' + name)) as f:
            retry = f.read()
        self.assertLess(len(retry), 500)
        self.assertIn('tempfail0@example.com: 451', retry)
        self.assertIn(' and 997 more', retry)

    def test_the_cap_is_remembered_across_passes(self):
        server = self.layer.server
        server.max_recipients = 100
        processor = self._makeOne()
        self._queue(addresses(150))
        self.assertEqual(processor.process().counts['sent'], 1)
        self._queue(addresses(150, 's'))
        self.assertEqual(processor.process().counts['sent'], 1)
        self.assertEqual(server.connections, 2)
        self.assertEqual(server.capped, 1)  # the second one knew it
        self.assertEqual(len(server.messages), 4)

    def test_a_cap_at_the_first_recipient_defers_the_message(self):
        server = self.layer.server
        server.max_recipients = 0
        self._queue(addresses(3))
        result = self._makeOne().process()
        self.assertEqual(dict(result.counts), {'deferred': 1})
        self.assertEqual(server.capped, 1)
        self.assertEqual(len(self._messages('cur')), 1)

    def test_a_lost_later_transaction_retries_only_the_rest(self):
        DropSecondData = drop_second_data()
        from zope.sendmail.stores.maildir.envelope import parse_envelope
        server = self.layer.server
        server.max_recipients = 2
        to = addresses(5)
        [message_id] = self._queue(to)
        result = self._makeOne(self._mailer(DropSecondData)).process()
        self.assertEqual(dict(result.counts), {'deferred': 1})
        self.assertEqual([type(e).__name__ for e in self.events],
                         ['MailSentEvent'])
        [name] = self._messages('cur')
        with open(os.path.join(self.queue, 'cur', name), 'rb') as f:
            self.assertEqual(parse_envelope(f.read())[1], tuple(to[2:]))
        self.now += 10 ** 5
        result = self._makeOne().process()
        self.assertEqual(dict(result.counts), {'sent': 1})
        self.assertEqual(self._received(), to)  # each once
