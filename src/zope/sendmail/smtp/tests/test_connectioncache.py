"""The connection a direct delivery's mailer keeps between transactions,
against the test SMTP server."""
import threading
import unittest

import transaction

from zope.sendmail.testserver import SMTPServerLayer


class Clock:

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ConnectionCacheTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        self.mailer = SMTPMailer(server.host, server.port, timeout=5)
        self.addCleanup(clear_all)

    def _makeOne(self, **kw):
        from zope.sendmail.smtp.connectioncache import ConnectionCache
        self.clock = Clock()
        return ConnectionCache(self.mailer.connect, clock=self.clock, **kw)

    def _send(self, connection, n=0):
        return connection.send('a@example.com', ['b@example.com'],
                               b'Subject: %d\r\n\r\nbody\r\n' % n)

    def test_provides_interfaces(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailerConnection
        from zope.sendmail.interfaces import IConnectionCache
        cache = self._makeOne()
        self.assertTrue(verifyObject(IConnectionCache, cache))
        connection = cache.acquire()
        self.assertTrue(verifyObject(IMailerConnection, connection))
        connection.close()
        connection.close()  # harmless twice

    def test_the_next_user_gets_the_same_connection(self):
        cache = self._makeOne()
        for n in range(3):
            with cache.acquire() as connection:
                self._send(connection, n)
        server = self.layer.server
        self.assertEqual(server.connections, 1)
        self.assertEqual(server.open_connections, 1)
        cache.clear()
        server.wait_until_idle()

    def test_one_user_at_a_time(self):
        cache = self._makeOne()
        first, second = cache.acquire(), cache.acquire()
        self._send(first)
        self._send(second)
        first.close()
        second.close()  # one idle connection is enough: the other closes
        self.assertEqual(self.layer.server.connections, 2)
        with cache.acquire() as third:
            self._send(third)
        self.assertEqual(self.layer.server.connections, 2)

    def test_idle_too_long_is_closed_and_replaced(self):
        cache = self._makeOne(idle=2.0)
        with cache.acquire() as connection:
            self._send(connection)
        self.clock.now += 1.0
        self.assertEqual(cache.expire(), 102.0)
        self.clock.now += 1.5
        self.assertIsNone(cache.expire())  # closed now
        self.layer.server.wait_until_idle()
        with cache.acquire() as connection:
            self._send(connection)
        self.assertEqual(self.layer.server.connections, 2)

    def test_the_reaper_closes_idle_connections(self):
        from zope.sendmail.smtp.connectioncache import ConnectionCache
        cache = ConnectionCache(self.mailer.connect, idle=0.1)
        with cache.acquire() as connection:
            self._send(connection)
        self.layer.server.wait_until_idle(timeout=5)

    def test_dropped_after_an_error(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        server = self.layer.server
        cache = self._makeOne()
        server.fail_mail(550, '5.7.1 sender rejected')
        with cache.acquire() as connection:
            with self.assertRaises(PermanentDeliveryError):
                self._send(connection)
        server.wait_until_idle()
        server.reset()
        with cache.acquire() as connection:
            self._send(connection)
        self.assertEqual(server.connections, 1)  # a new one

    def test_a_relay_that_closed_the_idle_connection(self):
        server = self.layer.server
        cache = self._makeOne()
        with cache.acquire() as connection:
            self._send(connection, 1)
        server.drop_at, server.drop_once = 'mail', True
        with cache.acquire() as connection:
            self._send(connection, 2)  # reconnected transparently
        self.assertEqual(len(server.messages), 2)
        self.assertEqual(server.connections, 2)

    def test_a_failing_quit_loses_nothing(self):
        server = self.layer.server
        cache = self._makeOne()
        with cache.acquire() as connection:
            self._send(connection)
        server.drop_at = 'quit'
        cache.clear()
        server.wait_until_idle()
        self.assertEqual(len(server.messages), 1)

    def test_at_exit_every_idle_connection_is_closed(self):
        from zope.sendmail.smtp.connectioncache import _reaper
        cache = self._makeOne()
        with cache.acquire() as connection:
            self._send(connection)
        _reaper.close_all()  # what atexit runs
        self.layer.server.wait_until_idle()

    def test_bad_idle(self):
        with self.assertRaises(ValueError):
            self._makeOne(idle=0)


class DirectDeliveryTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        from zope.sendmail.delivery import DirectMailDelivery
        from zope.sendmail.events import dispatcher
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        transaction.abort()
        self.addCleanup(transaction.abort)
        self.addCleanup(dispatcher.stop)
        self.addCleanup(clear_all)
        self.mailer = SMTPMailer(server.host, server.port, timeout=5)
        self.delivery = DirectMailDelivery(self.mailer)

    def _commit_one(self, n):
        self.delivery.send('a@example.com', ['b@example.com'],
                           b'Subject: %d\n\nbody\n' % n)
        transaction.commit()

    def test_next_transaction_reuses_and_a_closed_one_is_replaced(self):
        server = self.layer.server
        self._commit_one(1)
        self._commit_one(2)
        self.assertEqual(server.connections, 1)
        server.drop_at, server.drop_once = 'mail', True
        self._commit_one(3)
        self.assertEqual(len(server.messages), 3)
        self.assertEqual(server.connections, 2)

    def test_transactions_in_threads_each_have_their_own(self):
        barrier = threading.Barrier(2, timeout=5)
        errors = []

        def commit(n):
            try:
                self.delivery.send('a@example.com', ['b@example.com'],
                                   b'Subject: %d\n\nbody\n' % n)
                barrier.wait()
                transaction.commit()
            except Exception as e:  # reported below, in the test's thread
                errors.append(e)
        threads = [threading.Thread(target=commit, args=(n,))
                   for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        self.assertEqual(errors, [])
        self.assertEqual(len(self.layer.server.wait_for(2)), 2)

    def test_the_73_protocol_is_unchanged(self):
        server = self.layer.server
        self.mailer.send('a@example.com', ['b@example.com'], b'\r\n1\r\n')
        self.mailer.vote('a@example.com', ['b@example.com'], b'\r\n2\r\n')
        self.mailer.send('a@example.com', ['b@example.com'], b'\r\n2\r\n')
        self.assertEqual(server.connections, 2)
        server.wait_until_idle()
