"""Tests of the failoverMailer directive."""
import transaction
from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support.zcml import ZCMLTestBase
from zope.sendmail.testserver import SMTPServerLayer


class FailoverMailerDirectiveTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def _load_failover(self, attributes='', down=None):
        server = self.layer.server
        down = closed_port() if down is None else down
        # Declared before the mailers it names, and named by a delivery
        # declared before it: all is looked up when the actions run.
        self._load(f'<mail:directDelivery mailer="both" />'
                   f'<mail:failoverMailer name="both"'
                   f' mailers="primary backup" {attributes}/>'
                   f'<mail:smtpMailer name="primary" hostname="127.0.0.1"'
                   f' port="{down}" />'
                   f'<mail:smtpMailer name="backup" hostname="{server.host}"'
                   f' port="{server.port}" />')
        return down

    def test_registered_with_its_mailers(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IFailoverMailer
        self._load_failover('retryPeriod="5" roundRobin="true"')
        mailer = self._mailer('both')
        verifyObject(IFailoverMailer, mailer)
        self.assertEqual(mailer.mailers, [self._mailer('primary'),
                                          self._mailer('backup')])
        self.assertEqual((mailer.retry_period, mailer.round_robin),
                         (5.0, True))
        self.assertIs(self._delivery().mailer, mailer)

    def test_defaults(self):
        self._load_failover()
        mailer = self._mailer('both')
        self.assertEqual((mailer.retry_period, mailer.round_robin),
                         (60.0, False))

    def test_sends_through_the_backup_while_the_primary_is_down(self):
        down = self._load_failover()
        self._delivery().send('a@example.com', ['b@example.com'],
                              'Subject: zcml\n\nhi\n')
        transaction.commit()
        [message] = self.layer.server.wait_for(1)
        self.assertEqual(message.rcpt_tos, ['b@example.com'])
        self.assertEqual(list(self._mailer('both').skipped()),
                         [f'127.0.0.1:{down}'])

    def test_queued_delivery_through_it(self):
        server = self.layer.server
        self._load(f'<mail:queuedDelivery mailer="both"'
                   f' queuePath="{self.queue}" interval="0.1" />'
                   f'<mail:smtpMailer name="primary" hostname="127.0.0.1"'
                   f' port="{closed_port()}" />'
                   f'<mail:smtpMailer name="backup" hostname="{server.host}"'
                   f' port="{server.port}" />'
                   f'<mail:failoverMailer name="both"'
                   f' mailers="primary backup" />')
        self._start()
        self._delivery().send('a@example.com', ['b@example.com'],
                              'Subject: queued\n\nhi\n')
        transaction.commit()
        [message] = server.wait_for(1, timeout=10)
        self.assertEqual(message.rcpt_tos, ['b@example.com'])

    def test_unknown_mailer_when_the_action_runs(self):
        with self.assertRaises(ConfigurationError) as caught:
            self._load('<mail:failoverMailer name="both"'
                       ' mailers="primary nowhere" />'
                       '<mail:smtpMailer name="primary" />')
        text = str(caught.exception)
        self.assertIn("mailer 'nowhere' is not defined", text)
        self.assertIn('File "<string>", line 4', text)

    def test_bad_attributes(self):
        for attributes, expected in [
                ('mailers=""', 'at least one mailer'),
                ('mailers="a both"', 'names itself'),
                ('mailers="a a"', 'names a mailer twice'),
                ('mailers="a" retryPeriod="0"', 'retryPeriod'),
                ('mailers="a" retryPeriod="nan"', 'retryPeriod'),
                ('mailers="a" roundRobin="tomato"', 'roundRobin'),
        ]:
            with self.subTest(attributes):
                with self.assertRaisesRegex(ConfigurationError, expected):
                    self._load(f'<mail:failoverMailer name="both"'
                               f' {attributes} />'
                               f'<mail:smtpMailer name="a" />')

    def test_conflicts_with_a_mailer_of_its_name(self):
        from zope.configuration.config import ConfigurationConflictError
        with self.assertRaises(ConfigurationConflictError):
            self._load('<mail:failoverMailer name="a" mailers="b" />'
                       '<mail:smtpMailer name="a" />'
                       '<mail:smtpMailer name="b" />')
