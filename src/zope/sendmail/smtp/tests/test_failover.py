"""Tests of FailoverMailer against two SMTP test servers on 127.0.0.1."""
import base64
import time
import unittest

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support import wait_until


MESSAGE = b'Message-Id: <f1@example.com>\r\nSubject: test\r\n\r\nHello\r\n'
QUOTA = 'Throttling failure: Daily message quota exceeded'


class FailoverTestBase(unittest.TestCase):
    """Two relays, ``first`` and ``second``, each a test server (or a port
    where nothing listens, for a relay that is down)."""

    def setUp(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        self.addCleanup(clear_all)
        self.log = InstalledHandler('zope.sendmail.smtp.failover')
        self.addCleanup(self.log.uninstall)

    def _server(self, **kw):
        from zope.sendmail.testserver import SMTPTestServer
        server = SMTPTestServer(**kw).start()
        self.addCleanup(server.stop)
        return server

    def _mailer(self, port, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        kw.setdefault('timeout', 5)
        return SMTPMailer('127.0.0.1', port, **kw)

    def _getTargetClass(self):
        from zope.sendmail.mailer import FailoverMailer
        return FailoverMailer

    def _makeOne(self, *mailers, **kw):
        return self._getTargetClass()(mailers, **kw)

    def _send(self, sender, toaddrs=('bob@example.com',), message=MESSAGE):
        return sender.send('alice@example.com', list(toaddrs), message)

    def _logged(self):
        return [(r.levelname, r.getMessage()) for r in self.log.records]


class FailoverMailerTests(FailoverTestBase):

    def test_interfaces(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IFailoverMailer
        from zope.sendmail.interfaces import IMailerConnection
        server = self._server()
        mailer = self._makeOne(self._mailer(server.port))
        verifyObject(IFailoverMailer, mailer)
        with mailer.connect() as connection:
            verifyObject(IMailerConnection, connection)
            self.assertEqual(connection.relay, f'127.0.0.1:{server.port}')
        with mailer.cached_connect() as connection:
            verifyObject(IMailerConnection, connection)

    def test_smtp_connections_name_their_relay(self):
        from zope.sendmail.smtp.single import SingleMessageConnection
        server = self._server()
        mailer = self._mailer(server.port)
        with mailer.connect() as connection:
            self.assertEqual(connection.relay, f'127.0.0.1:{server.port}')
        with mailer.cached_connect() as connection:
            self.assertEqual(connection.relay, f'127.0.0.1:{server.port}')
        mailer.connection_cache.clear()
        self.assertEqual(SingleMessageConnection(DummyMailer()).relay, None)
        self.assertEqual(SingleMessageConnection(mailer).relay,
                         f'127.0.0.1:{server.port}')

    def test_settings(self):
        cls = self._getTargetClass()
        with self.assertRaisesRegex(ValueError, 'at least one'):
            cls([])
        for period in (0, -1, float('nan'), float('inf'), '60', True):
            with self.assertRaisesRegex(ValueError, 'retry_period'):
                cls([DummyMailer()], retry_period=period)
        with self.assertRaisesRegex(ValueError, 'round_robin'):
            cls([DummyMailer()], round_robin='yes')
        mailer = cls([self._mailer(25, password='secret', username='u'),
                      DummyMailer()], retry_period=5)
        self.assertEqual(mailer.relays, ['127.0.0.1:25', 'DummyMailer'])
        self.assertEqual(repr(mailer),
                         '<FailoverMailer 127.0.0.1:25, DummyMailer>')
        self.assertNotIn('secret', repr(mailer))
        self.assertEqual((mailer.retry_period, mailer.round_robin),
                         (5.0, False))

    def test_first_down_then_back_after_retry_period(self):
        from zope.sendmail.testserver import SMTPTestServer
        port = closed_port()
        second = self._server()
        mailer = self._makeOne(self._mailer(port),
                               self._mailer(second.port), retry_period=1.0)
        self.assertEqual(mailer.next_relay(), f'127.0.0.1:{port}')
        started = time.monotonic()
        self.assertEqual(self._send(mailer), {})
        self.assertEqual(len(second.messages), 1)
        self.assertEqual(list(mailer.skipped()), [f'127.0.0.1:{port}'])
        self.assertEqual(mailer.next_relay(), f'127.0.0.1:{second.port}')
        # Skipped: the next message goes straight to the second relay.
        self._send(mailer)
        self.assertEqual(len(second.messages), 2)
        # The first relay comes back, on its port.
        first = SMTPTestServer(port=port).start()
        self.addCleanup(first.stop)
        self._send(mailer)  # still skipped
        self.assertEqual((len(first.messages), len(second.messages)), (0, 3))
        self.assertTrue(wait_until(lambda: not mailer.skipped(), 3))
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self._send(mailer)
        self.assertEqual((len(first.messages), len(second.messages)), (1, 3))
        self.assertEqual(mailer.next_relay(), f'127.0.0.1:{port}')
        logged = self._logged()
        self.assertEqual(logged[0][0], 'WARNING')
        self.assertRegex(logged[0][1],
                         rf'^relay 127.0.0.1:{port} skipped for 1 s: ')
        self.assertIn(('INFO',
                       f'connected through relay 127.0.0.1:{second.port}'
                       f' instead'), logged)
        self.assertIn(('INFO', f'relay 127.0.0.1:{port} taken back'), logged)
        self.assertEqual(len([m for _, m in logged if 'skipped for' in m]), 1)

    def test_refused_message_never_offered_to_another_relay(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        first, second = self._server(), self._server()
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        first.refuse('bob@example.com', 550, '5.1.1 no such user')
        with self.assertRaises(PermanentDeliveryError):
            self._send(mailer)
        first.reset()
        first.fail_data(554, '5.6.0 content rejected')
        with self.assertRaises(PermanentDeliveryError):
            self._send(mailer)
        first.reset()
        first.fail_mail(550, '5.7.1 sender rejected')
        with self.assertRaises(PermanentDeliveryError):
            self._send(mailer)
        # Some recipients refused: the others got it, through the first.
        first.reset()
        first.refuse('carol@example.com', 550, '5.1.1 no such user')
        refused = self._send(mailer, ['bob@example.com', 'carol@example.com'])
        self.assertEqual(list(refused), ['carol@example.com'])
        self.assertEqual(len(first.messages), 1)
        self.assertEqual(second.connections, 0)
        self.assertEqual(second.messages, [])
        self.assertEqual(mailer.skipped(), {})

    def test_temporary_refusal_stays_with_the_relay(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        first, second = self._server(), self._server()
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        first.fail_data(451, '4.3.0 try again later')
        with self.assertRaises(TemporaryDeliveryError):
            self._send(mailer)
        self.assertEqual(second.connections, 0)
        self.assertEqual(mailer.skipped(), {})

    def test_login_refused_goes_to_second_with_its_own_credentials(self):
        first = self._server(auth={'one': 'pw-one'})
        second = self._server(auth={'two': 'pw-two'})
        first.reject_auth = True
        mailer = self._makeOne(
            self._mailer(first.port, username='one', password='pw-one'),
            self._mailer(second.port, username='two', password='pw-two'))
        self._send(mailer)
        self.assertEqual(len(second.messages), 1)
        self.assertEqual(list(mailer.skipped()), [f'127.0.0.1:{first.port}'])
        # The first relay's credentials never went to the second.
        wire = '\n'.join(second.transcript())
        for secret in ('pw-one', base64.b64encode(b'\0one\0pw-one').decode(),
                       base64.b64encode(b'pw-one').decode()):
            self.assertNotIn(secret, wire)
        self.assertIn('535', '\n'.join(first.transcript()))
        self.assertNotIn('pw-one', '\n'.join(m for _, m in self._logged()))

    def test_quota_at_send_goes_to_second_on_the_same_connection(self):
        first, second = self._server(), self._server()
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        with mailer.connect() as connection:
            self.assertEqual(connection.relay, f'127.0.0.1:{first.port}')
            self._send(connection)
            first.fail_mail(454, f'4.7.0 {QUOTA}')
            self._send(connection)
            self.assertEqual(connection.relay, f'127.0.0.1:{second.port}')
            self._send(connection)
        self.assertEqual((len(first.messages), len(second.messages)), (1, 2))
        self.assertEqual(list(mailer.skipped()), [f'127.0.0.1:{first.port}'])

    def test_every_relay_down(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.interfaces import TemporaryDeliveryError
        one, two = closed_port(), closed_port()
        mailer = self._makeOne(self._mailer(one), self._mailer(two))
        with self.assertRaisesRegex(TemporaryDeliveryError,
                                    f'^no relay took the connection:'
                                    f' 127.0.0.1:{one}: .*; 127.0.0.1:{two}'):
            mailer.connect()
        self.assertEqual(len(mailer.skipped()), 2)
        # All skipped: all are tried all the same, and the first works.
        first = self._server()
        mailer = self._makeOne(self._mailer(closed_port()),
                               self._mailer(first.port, username='u',
                                            password='p'))
        first.reject_auth = True
        with self.assertRaises(TemporaryDeliveryError) as caught:
            mailer.connect()
        self.assertNotIsInstance(caught.exception, MailerConfigurationError)
        mailer = self._makeOne(self._mailer(first.port, username='u',
                                            password='p'))
        with self.assertRaises(MailerConfigurationError):
            mailer.connect()
        with self.assertRaises(MailerConfigurationError):
            mailer.connect()  # tried again, skipped or not

    def test_busy_relay_is_not_switched(self):
        from zope.sendmail.interfaces import RelayBusyError
        first, second = self._server(), self._server()
        first.max_connections = 0
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        with self.assertRaises(RelayBusyError):
            mailer.connect()
        self.assertEqual(second.connections, 0)
        self.assertEqual(mailer.skipped(), {})

    def test_throttled_is_not_switched(self):
        from zope.sendmail.interfaces import ThrottledError
        first, second = self._server(), self._server()
        first.max_rate = 1
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        with mailer.connect() as connection:
            self._send(connection)
            with self.assertRaises(ThrottledError):
                self._send(connection)
            self.assertEqual(connection.relay, f'127.0.0.1:{first.port}')
        self.assertEqual(second.connections, 0)
        self.assertEqual(mailer.skipped(), {})

    def test_round_robin(self):
        first, second = self._server(), self._server()
        third = closed_port()
        mailer = self._makeOne(
            self._mailer(first.port), self._mailer(third),
            self._mailer(second.port), round_robin=True, retry_period=30)
        relays = []
        for i in range(6):
            with mailer.connect() as connection:
                relays.append(connection.relay)
                self._send(connection)
        one, two = f'127.0.0.1:{first.port}', f'127.0.0.1:{second.port}'
        # The relay that is down takes none; the others take turns.
        self.assertEqual(relays, [one, two, one, two, one, two])
        self.assertEqual((len(first.messages), len(second.messages)), (3, 3))
        self.assertEqual(list(mailer.skipped()), [f'127.0.0.1:{third}'])

    def test_vote_send_abort(self):
        port = closed_port()
        second = self._server()
        mailer = self._makeOne(self._mailer(port), self._mailer(second.port))
        mailer.vote('alice@example.com', ['bob@example.com'], MESSAGE)
        self.assertEqual(second.open_connections, 1)
        self._send(mailer)
        second.wait_until_idle()
        self.assertEqual((second.connections, len(second.messages)), (1, 1))
        mailer.vote('alice@example.com', ['bob@example.com'], MESSAGE)
        mailer.abort()
        mailer.abort()
        second.wait_until_idle()
        self.assertEqual(len(second.messages), 1)

    def test_mailer_of_73(self):
        second = self._server()
        dummy = DummyMailer()
        mailer = self._makeOne(dummy, self._mailer(second.port))
        self._send(mailer)
        self.assertEqual(len(dummy.sent), 1)
        self.assertEqual(second.connections, 0)


class DirectDeliveryTests(FailoverTestBase):

    def setUp(self):
        import transaction

        from zope.sendmail.events import dispatcher
        super().setUp()
        transaction.abort()
        self.addCleanup(transaction.abort)
        self.addCleanup(dispatcher.stop)  # the events of the commits

    def _deliver(self, mailer, n=1):
        import transaction

        from zope.sendmail.delivery import DirectMailDelivery
        delivery = DirectMailDelivery(mailer)
        for i in range(n):
            delivery.send('alice@example.com', ['bob@example.com'],
                          b'Subject: direct %d\r\n\r\nbody\r\n' % i)
        transaction.commit()

    def test_first_down(self):
        port = closed_port()
        second = self._server()
        mailer = self._makeOne(self._mailer(port), self._mailer(second.port),
                               retry_period=0.5)
        self._deliver(mailer, 2)
        self._deliver(mailer)
        self.assertEqual(len(second.messages), 3)
        # One connection, kept by the second relay's mailer between
        # transactions.
        self.assertEqual(second.connections, 1)
        self.assertEqual(mailer.skipped().keys(), {f'127.0.0.1:{port}'})

    def test_back_after_retry_period(self):
        from zope.sendmail.testserver import SMTPTestServer
        port = closed_port()
        second = self._server()
        mailer = self._makeOne(self._mailer(port), self._mailer(second.port),
                               retry_period=0.5)
        self._deliver(mailer)
        first = SMTPTestServer(port=port).start()
        self.addCleanup(first.stop)
        self.assertTrue(wait_until(lambda: not mailer.skipped(), 3))
        self._deliver(mailer)
        self.assertEqual((len(first.messages), len(second.messages)), (1, 1))

    def test_quota_while_committing(self):
        first, second = self._server(), self._server()
        mailer = self._makeOne(self._mailer(first.port),
                               self._mailer(second.port))
        first.fail_mail(554, '5.2.0 STOREDRV.Submission.Exception:'
                             'SubmissionQuotaExceededException')
        self._deliver(mailer, 2)
        self.assertEqual((len(first.messages), len(second.messages)), (0, 2))

    def test_all_down_aborts_the_transaction(self):
        import transaction

        from zope.sendmail.delivery import DirectMailDelivery
        from zope.sendmail.interfaces import TemporaryDeliveryError
        mailer = self._makeOne(self._mailer(closed_port()),
                               self._mailer(closed_port()))
        DirectMailDelivery(mailer).send('alice@example.com',
                                        ['bob@example.com'], MESSAGE)
        with self.assertRaises(TemporaryDeliveryError):
            transaction.commit()


class DummyMailer:
    """A mailer written for 7.3: ``send`` only, no host."""

    def __init__(self):
        self.sent = []

    def send(self, fromaddr, toaddrs, message):
        self.sent.append((fromaddr, toaddrs, message))

    vote = abort = None
