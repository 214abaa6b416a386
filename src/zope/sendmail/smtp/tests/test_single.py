"""How a mailer is driven (`open_connection`): the one decision, for the
queue processor and direct delivery alike."""
import unittest

from zope.sendmail.testserver import SMTPServerLayer


class OpenConnectionTests(unittest.TestCase):

    layer = SMTPServerLayer

    def _callFUT(self, mailer, **kw):
        from zope.sendmail.smtp.single import open_connection
        return open_connection(mailer, **kw)

    def _mailer(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        return SMTPMailer(server.host, server.port, timeout=5)

    def test_a_mailer_with_connect_opens_connections(self):
        mailer = self._mailer()
        for n in range(2):
            with self._callFUT(mailer) as connection:
                connection.send('a@example.com', ['b@example.com'],
                                b'Subject: x\r\n\r\nbody\r\n')
        self.assertEqual(self.layer.server.connections, 2)

    def test_cached_takes_the_connection_its_cache_keeps(self):
        from zope.sendmail.smtp.connectioncache import clear_all
        mailer = self._mailer()
        # clear_all, not the cache's clear: it also waits for the reaper
        # thread the kept connection started, so that none is left behind.
        self.addCleanup(clear_all)
        for n in range(2):
            connection = self._callFUT(mailer, cached=True)
            connection.send('a@example.com', ['b@example.com'],
                            b'Subject: x\r\n\r\nbody\r\n')
            connection.close()  # back to the cache
        self.assertEqual(self.layer.server.connections, 1)
        self.assertEqual(len(self.layer.server.messages), 2)

    def test_a_73_mailer_is_driven_one_message_at_a_time(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IMailerConnection
        mailer = DummyMailer73()
        connection = self._callFUT(mailer)
        self.assertTrue(verifyObject(IMailerConnection, connection))
        self.assertEqual(mailer.calls, [])  # no vote without a message
        connection.send('a@x.org', ['b@x.org'], memoryview(b'data'))
        connection.close()
        self.assertEqual(mailer.calls,
                         [('send', 'a@x.org', ['b@x.org'], b'data')])

    def test_first_lets_a_73_mailer_vote(self):
        mailer = DummyMailer73()
        connection = self._callFUT(mailer, cached=True,
                                   first=('a@x.org', ['b@x.org'], b'data'))
        connection.close()  # nothing sent: what the vote prepared goes
        self.assertEqual(mailer.calls, [
            ('vote', 'a@x.org', ['b@x.org'], b'data'), ('abort',)])


class DummyMailer73:
    """A mailer of zope.sendmail 7.3's kind: vote, send, abort."""

    def __init__(self):
        self.calls = []

    def vote(self, fromaddr, toaddrs, message):
        self.calls.append(('vote', fromaddr, toaddrs, message))

    def send(self, fromaddr, toaddrs, message):
        self.calls.append(('send', fromaddr, toaddrs, message))

    def abort(self):
        self.calls.append(('abort',))
