"""Tests of the test server's XOAUTH2, SMTPUTF8 and transcript, spoken to
with plain smtplib."""
import base64
import smtplib
import unittest

from zope.sendmail.testserver import SMTPTestServer


class XOAUTH2ServerTests(unittest.TestCase):

    def setUp(self):
        self.server = SMTPTestServer(oauth2={'u@x.org': 'tok'}).start()
        self.addCleanup(self.server.stop)
        self.smtp = smtplib.SMTP(self.server.host, self.server.port,
                                 timeout=5)
        self.addCleanup(self.smtp.close)
        self.smtp.ehlo()

    def _auth(self, text):
        blob = base64.b64encode(text.encode()).decode()
        return self.smtp.docmd('AUTH', 'XOAUTH2 ' + blob)

    def test_offered_alone(self):
        self.assertEqual(self.smtp.esmtp_features['auth'].strip(), 'XOAUTH2')

    def test_valid_token(self):
        code, reply = self._auth('user=u@x.org\x01auth=Bearer tok\x01\x01')
        self.assertEqual(code, 235)

    def test_refused_token_challenge_then_535(self):
        code, reply = self._auth('user=u@x.org\x01auth=Bearer old\x01\x01')
        self.assertEqual(code, 334)
        self.assertEqual(base64.b64decode(reply)[:18],
                         b'{"status": "401", ')
        self.assertEqual(self.smtp.docmd(''),
                         (535, b'5.7.3 Authentication unsuccessful'))

    def test_abort_and_malformed(self):
        self._auth('user=u@x.org\x01auth=Bearer old\x01\x01')
        self.assertEqual(self.smtp.docmd('*')[0], 501)
        self.assertEqual(self._auth('user=u@x.org auth=Bearer tok')[0], 501)

    def test_tokens_change_and_reset(self):
        self.server.oauth2_tokens['u@x.org'] = 'new'
        self.assertEqual(
            self._auth('user=u@x.org\x01auth=Bearer tok\x01\x01')[0], 334)
        self.server.reset()
        self.assertEqual(self.server.oauth2_tokens, {'u@x.org': 'tok'})

    def test_reject_auth(self):
        self.server.reject_auth = True
        self.assertEqual(
            self._auth('user=u@x.org\x01auth=Bearer tok\x01\x01')[0], 334)


class SMTPUTF8AndTranscriptTests(unittest.TestCase):

    def test_smtputf8_on_demand(self):
        for offered in (False, True):
            with SMTPTestServer(smtputf8=offered) as server:
                with smtplib.SMTP(server.host, server.port, timeout=5) as c:
                    c.ehlo()
                    self.assertEqual(c.has_extn('smtputf8'), offered)

    def test_transcript(self):
        with SMTPTestServer() as server:
            with smtplib.SMTP(server.host, server.port, timeout=5) as c:
                c.sendmail('a@x.org', ['b@x.org'], b'Subject: x\r\n\r\n.y\r\n')
            server.wait_until_idle()
            [message] = server.messages
            lines = server.transcript(message.connection)
            self.assertEqual(lines[0][:7], 'S: 220 ')
            self.assertEqual(lines[-5:], [
                'S: 354 End data with <CR><LF>.<CR><LF>',
                'C: <message>', 'S: 250 2.0.0 OK: queued',
                'C: QUIT', 'S: 221 Bye'])
            # smtplib writes "mail FROM:" before Python 3.13, "mail from:"
            # since: the transcript has what was sent.
            lower = [line.lower() for line in lines]
            self.assertIn('c: mail from:<a@x.org> size=18', lower)
            self.assertIn('c: rcpt to:<b@x.org>', lower)
            self.assertEqual(server.transcript(), lines)
            server.reset()
            self.assertEqual(server.transcript(), [])
