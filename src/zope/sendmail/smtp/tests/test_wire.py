"""Tests of what a queue file puts on the wire."""
from zope.sendmail.tests.support.mailer import MailerTestBase
from zope.sendmail.testserver import SMTPServerLayer


class QueueFileOverTheWireTests(MailerTestBase):
    """A queued file's envelope lines are bookkeeping: they never reach the
    relay, and its envelope is what they say."""

    layer = SMTPServerLayer

    def test_bookkeeping_headers_stripped(self):
        import os
        import shutil
        import tempfile

        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.stores.maildir.envelope import parse_envelope
        from zope.sendmail.stores.maildir.folder import Maildir
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        queue = os.path.join(tmp, 'queue')
        QueuedMailDelivery(queue).send(
            'alice@example.com', ['"Doe, Jo" <jo@example.com>', 'b@x.org'],
            b'Subject: queued\n\nbody\n')
        transaction.commit()
        [path] = Maildir(queue)
        with open(path, 'rb') as f:
            fromaddr, toaddrs, message = parse_envelope(f.read())
        self._makeOne().send(fromaddr, toaddrs, message)
        [received] = self.layer.server.messages
        self.assertEqual(received.mail_from, 'alice@example.com')
        self.assertEqual(received.rcpt_tos, ['jo@example.com', 'b@x.org'])
        self.assertNotIn(b'X-Zope', received.data)
        self.assertTrue(received.data.startswith(b'Message-Id: <'))
        self.assertTrue(received.data.endswith(
            b'\r\nSubject: queued\r\n\r\nbody\r\n'))
