"""The SMTP test server driven by plain smtplib: `ServerTestCase`
connects to the server of the test's layer and sends `MESSAGE`."""
import smtplib
import ssl
import unittest


MESSAGE = (b'From: sender@example.com\r\nTo: rcpt@example.com\r\n'
           b'Subject: test\r\n\r\nHello,\r\n.leading dot\r\nbye\r\n')


def unverified_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ServerTestCase(unittest.TestCase):

    @property
    def server(self):
        return self.layer.server

    def connect(self, **kw):
        smtp = smtplib.SMTP(self.server.host, self.server.port, timeout=5,
                            **kw)
        self.addCleanup(smtp.close)
        return smtp

    def send(self, smtp, to=('rcpt@example.com',), msg=MESSAGE):
        return smtp.sendmail('sender@example.com', list(to), msg)
