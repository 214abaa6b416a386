"""Tests of a pass when the relay is the problem, and of connection use."""
from zope.sendmail.tests.support.processor import ProcessorTestBase
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import TLSSMTPServerLayer


class RelayProblemTests(ProcessorTestBase):

    def test_unreachable_relay_blames_no_message(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.tests.support import closed_port
        self._queue(['bob@example.com'], ['carl@example.com'])
        result = self._makeOne(SMTPMailer('127.0.0.1', closed_port())) \
            .process()
        self.assertIsInstance(result.error, TemporaryDeliveryError)
        self.assertEqual(len(self._messages('new')), 2)
        self.assertEqual(self._files('cur'), [])
        [record] = self.log.records
        self.assertIn('relay unavailable, pass stopped', record.getMessage())

    def test_force_tls_without_starttls_rejects_nothing(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        self._queue(['bob@example.com'])
        result = self._makeOne(SMTPMailer(server.host, server.port,
                                          force_tls=True)).process()
        self.assertIsInstance(result.error, MailerConfigurationError)
        self.assertEqual(len(self._messages('new')), 1)
        self.assertIn('configuration problem, pass stopped',
                      self.log.records[0].getMessage())

    def test_many_messages_per_connection_and_a_limit(self):
        self._queue(*[['bob@example.com']] * 10)
        processor = self._makeOne(connections=1, max_messages=3)
        sent = [processor.process().counts['sent'] for n in range(4)]
        self.assertEqual(sent, [3, 3, 3, 1])
        self.assertEqual(self.layer.server.connections, 4)

    def test_a_pass_takes_what_its_connections_carry(self):
        self._queue(*[['bob@example.com']] * 7)
        processor = self._makeOne(connections=2, max_messages=2)
        result = processor.process()
        self.assertEqual(result.counts['sent'], 4)
        self.assertTrue(result.more)
        result = processor.process()
        self.assertEqual(result.counts['sent'], 3)
        self.assertFalse(result.more)
        self.assertEqual(len(self.layer.server.messages), 7)

    def test_parallel_connections(self):
        self._queue(*[['bob@example.com']] * 40)
        self.layer.server.delay = 0.002
        result = self._makeOne(connections=4).process()
        self.assertEqual(result.counts['sent'], 40)
        # More than one as the backlog justifies it, never more than 4.
        self.assertIn(self.layer.server.connections, (2, 3, 4))
        self.assertEqual(len({m.data for m in self.layer.server.messages}),
                         40)


class AuthenticationTests(ProcessorTestBase):

    layer = TLSSMTPServerLayer

    def test_refused_login_rejects_nothing(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        self._queue(['bob@example.com'], ['carl@example.com'])
        mailer = SMTPMailer(server.host, server.port, username=TEST_USER,
                            password='wrong', tls_ca_file=server.ca_file)
        result = self._makeOne(mailer).process()
        self.assertIsInstance(result.error, MailerConfigurationError)
        self.assertEqual(len(self._messages('new')), 2)
        self.assertNotIn('wrong', self.log.records[0].getMessage())
        mailer.password = TEST_PASSWORD
        self.assertEqual(self._makeOne(mailer).process().counts['sent'], 2)
