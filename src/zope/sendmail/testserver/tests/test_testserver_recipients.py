"""The test server's recipient faults: greylisting and a recipient cap,
driven by plain smtplib."""
import smtplib
import time

from zope.sendmail.tests.support.server import ServerTestCase
from zope.sendmail.testserver import SMTPServerLayer


class GreylistTests(ServerTestCase):

    layer = SMTPServerLayer

    def test_greylisted_until_the_time_is_up_then_accepted(self):
        self.server.greylist('Grey@example.com', 0.3)
        smtp = self.connect()
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as caught:
            self.send(smtp, to=['grey@example.com'])
        self.assertEqual(caught.exception.recipients, {'grey@example.com': (
            451, b'4.7.1 Greylisted, please try again later')})
        smtp.rset()
        # Another recipient of the same message is not greylisted.
        self.assertEqual(
            self.send(smtp, to=['grey@example.com', 'ok@example.com']),
            {'grey@example.com': (
                451, b'4.7.1 Greylisted, please try again later')})
        self.assertEqual(self.server.greylisted['grey@example.com'], 2)
        time.sleep(0.3)
        self.assertEqual(self.send(smtp, to=['grey@example.com']), {})
        self.assertEqual([m.rcpt_tos for m in self.server.messages],
                         [['ok@example.com'], ['grey@example.com']])
        self.assertEqual(self.server.greylisted['grey@example.com'], 2)

    def test_bad_duration(self):
        with self.assertRaises(ValueError):
            self.server.greylist('a@example.com', -1)


class RecipientCapTests(ServerTestCase):

    layer = SMTPServerLayer

    def test_recipients_past_the_cap_get_452_and_the_rest_go_later(self):
        self.server.max_recipients = 2
        smtp = self.connect()
        to = [f'r{n}@example.com' for n in range(5)]
        refused = self.send(smtp, to=to)
        # smtplib knows nothing of caps: it reports them as refusals.
        self.assertEqual(refused, dict.fromkeys(
            to[2:], (452, b'4.5.3 Too many recipients')))
        self.assertEqual(self.server.capped, 3)
        # A new transaction counts from zero.
        self.assertEqual(self.send(smtp, to=to[2:4]), {})
        self.assertEqual([m.rcpt_tos for m in self.server.messages],
                         [to[:2], to[2:4]])

    def test_refused_recipients_do_not_count(self):
        self.server.max_recipients = 1
        smtp = self.connect()
        self.assertEqual(
            self.send(smtp, to=['reject@example.com', 'a@example.com']), {
                'reject@example.com': (
                    550, b'5.1.1 reject@ test address: no such user')})

    def test_a_cap_at_the_first_recipient(self):
        self.server.max_recipients = 0
        smtp = self.connect()
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            self.send(smtp, to=['a@example.com'])
        self.assertEqual(self.server.capped, 1)

    def test_reset_lifts_them(self):
        self.server.max_recipients = 0
        self.server.greylist('a@example.com')
        self.server.reset()
        self.assertEqual(self.send(self.connect(), to=['a@example.com']), {})
        self.assertEqual((self.server.capped, dict(self.server.greylisted)),
                         (0, {}))
