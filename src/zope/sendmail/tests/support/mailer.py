"""`SMTPMailer` over the wire: `MailerTestBase` builds a mailer for the
test server of the test's layer and sends `MESSAGE` through it."""
import unittest


MESSAGE = b'Message-Id: <m1@example.com>\r\nSubject: test\r\n\r\nHello\r\n'


class MailerTestBase(unittest.TestCase):

    def _getTargetClass(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        return SMTPMailer

    def _makeOne(self, **kw):
        server = self.layer.server
        kw.setdefault('timeout', 5)
        return self._getTargetClass()(server.host, server.port, **kw)

    def _send(self, mailer, toaddrs=('bob@example.com',), message=MESSAGE):
        return mailer.send('alice@example.com', list(toaddrs), message)
