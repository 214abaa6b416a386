"""Tests of a queue processor sending through a FailoverMailer: the first
relay a server of the test's own (or a port where nothing listens), the
second the layer's server."""
import time

from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.processor import ProcessorTestBase


class ProcessorFailoverTests(ProcessorTestBase):

    def setUp(self):
        super().setUp()
        self.second = self.layer.server

    def _server(self, **kw):
        from zope.sendmail.testserver import SMTPTestServer
        server = SMTPTestServer(**kw).start()
        self.addCleanup(server.stop)
        return server

    def _failover(self, first_port, **kw):
        from zope.sendmail.mailer import FailoverMailer
        from zope.sendmail.smtp.mailer import SMTPMailer
        return FailoverMailer([SMTPMailer('127.0.0.1', first_port, timeout=5),
                               SMTPMailer('127.0.0.1', self.second.port,
                                          timeout=5)], **kw)

    @staticmethod
    def _subjects(server):
        return [line.decode() for m in server.messages
                for line in m.data.split(b'\r\n')
                if line.startswith(b'Subject: ')]

    def test_second_while_first_down_first_once_back(self):
        from zope.sendmail.testserver import SMTPTestServer
        port = closed_port()
        mailer = self._failover(port, retry_period=1.0)
        processor = self._makeOne(mailer)
        self._queue(['bob@example.com'], subject='down 1')
        self._queue(['bob@example.com'], subject='down 2')
        result = processor.process()
        self.assertIsNone(result.error)
        self.assertEqual(result.counts['sent'], 2)
        self.assertEqual(self._subjects(self.second),
                         ['Subject: down 1', 'Subject: down 2'])
        first = SMTPTestServer(port=port).start()
        self.addCleanup(first.stop)
        self._queue(['bob@example.com'], subject='skipped')
        processor.process()
        self.assertEqual(first.messages, [])
        self.assertTrue(wait_until(lambda: not mailer.skipped(), 3))
        self._queue(['bob@example.com'], subject='back')
        self.assertEqual(processor.process().counts['sent'], 1)
        self.assertEqual(self._subjects(first), ['Subject: back'])
        self.assertEqual(len(self.second.messages), 3)
        self.assertEqual(self._messages('new') + self._messages('cur'), [])

    def test_refused_message_never_offered_to_the_second(self):
        first = self._server()
        first.refuse('bob@example.com', 550, '5.1.1 no such user')
        processor = self._makeOne(self._failover(first.port))
        self._queue(['bob@example.com'], ['carl@example.com'])
        result = processor.process()
        self.assertEqual((result.counts['rejected'], result.counts['sent']),
                         (1, 1))
        self.assertEqual(len(first.messages), 1)
        self.assertEqual(self.second.connections, 0)
        self.assertEqual([e[0] for e in self._events()],
                         ['MailErrorEvent', 'MailSentEvent'])

    def test_quota_switches_within_the_pass(self):
        first = self._server()
        mailer = self._failover(first.port)
        processor = self._makeOne(mailer, connections=1)
        self._queue(['bob@example.com'], subject='one')
        processor.process()
        first.fail_mail(454, '4.7.0 Throttling failure: Daily message quota'
                             ' exceeded')
        self._queue(*[['bob@example.com']] * 3, subject='quota')
        result = processor.process()
        self.assertIsNone(result.error)
        self.assertEqual(result.counts['sent'], 3)
        self.assertEqual(len(first.messages), 1)
        self.assertEqual(self._subjects(self.second), ['Subject: quota'] * 3)
        self.assertEqual(list(mailer.skipped()), [f'127.0.0.1:{first.port}'])
        # The connection that switched is counted against the second
        # relay: no other connection was opened to it for the rest.
        self.assertEqual(self.second.connections, 1)
        for relay in (first.port, self.second.port):
            schedule = processor.schedules.get(f'127.0.0.1:{relay}')
            self.assertEqual((schedule._open, schedule._opening), (0, 0))

    def test_login_refused_goes_to_the_second(self):
        from zope.sendmail.mailer import FailoverMailer
        from zope.sendmail.smtp.mailer import SMTPMailer
        first = self._server(auth={'one': 'pw-one'})
        first.reject_auth = True
        mailer = FailoverMailer([
            SMTPMailer('127.0.0.1', first.port, 'one', 'pw-one', timeout=5),
            SMTPMailer('127.0.0.1', self.second.port, timeout=5)])
        self._queue(['bob@example.com'])
        result = self._makeOne(mailer).process()
        self.assertEqual(result.counts['sent'], 1)
        self.assertEqual(len(self.second.messages), 1)

    def test_throttling_slows_down_without_switching(self):
        first = self._server()
        first.max_rate = 2
        mailer = self._failover(first.port)
        processor = self._makeOne(mailer, connections=1)
        self._queue(*[['bob@example.com']] * 6)
        started = time.monotonic()
        counts = processor.process().counts
        while counts['sent'] < 6 and time.monotonic() - started < 20:
            counts += processor.process().counts
        self.assertEqual(counts['sent'], 6)
        self.assertGreater(first.throttled, 0)
        self.assertGreater(counts['throttled'], 0)
        self.assertEqual(len(first.messages), 6)
        self.assertEqual(self.second.connections, 0)
        self.assertEqual(mailer.skipped(), {})
        # Paced: six messages at two a second take over two seconds.
        self.assertGreater(time.monotonic() - started, 2.0)

    def test_each_relay_has_its_own_schedule(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IRelaySchedules
        first = self._server()
        first.max_rate = 2
        mailer = self._failover(first.port, round_robin=True)
        processor = self._makeOne(mailer, connections=1)
        verifyObject(IRelaySchedules, processor.schedules)
        self._queue(*[['bob@example.com']] * 12)
        started = time.monotonic()
        sent = 0
        while sent < 12 and time.monotonic() - started < 20:
            sent += processor.process().counts['sent']
        self.assertEqual(sent, 12)
        self.assertGreater(first.throttled, 0)
        one = processor.schedules.get(f'127.0.0.1:{first.port}')
        two = processor.schedules.get(f'127.0.0.1:{self.second.port}')
        self.assertEqual(sorted(processor.schedules.relays()),
                         sorted([f'127.0.0.1:{first.port}',
                                 f'127.0.0.1:{self.second.port}']))
        # The first relay's throttling slowed the first relay down only.
        self.assertIsNotNone(one.rate)
        self.assertIsNone(two.rate)
        self.assertIsNone(processor.schedule.rate)
        self.assertGreater(len(self.second.messages), 0)
        self.assertEqual(len(first.messages) + len(self.second.messages), 12)

    def test_connection_limit_per_relay(self):
        first = self._server()
        first.max_connections = 1
        first.delay = 0.002
        mailer = self._failover(first.port)
        processor = self._makeOne(mailer, connections=3)
        self._queue(*[['bob@example.com']] * 40)
        result = processor.process()
        self.assertEqual(result.counts['sent'], 40)
        one = processor.schedules.get(f'127.0.0.1:{first.port}')
        two = processor.schedules.get(f'127.0.0.1:{self.second.port}')
        # Turned away by the first: no switch, its concurrency came down.
        self.assertEqual(len(first.messages), 40)
        self.assertEqual(self.second.connections, 0)
        if first.turned_away:
            self.assertEqual(one.concurrency, 1)
        self.assertEqual(two.concurrency, 3)
        self.assertEqual(processor.schedule.concurrency, 3)

    def test_booked_with_the_relay_chosen(self):
        port = closed_port()
        mailer = self._failover(port)
        processor = self._makeOne(mailer, connections=2)
        self._queue(*[['bob@example.com']] * 30)
        self.assertEqual(processor.process().counts['sent'], 30)
        down = processor.schedules.get(f'127.0.0.1:{port}')
        up = processor.schedules.get(f'127.0.0.1:{self.second.port}')
        # Every booking was given back: nothing counts as open or opening.
        for schedule in (down, up):
            self.assertEqual((schedule._open, schedule._opening), (0, 0))
