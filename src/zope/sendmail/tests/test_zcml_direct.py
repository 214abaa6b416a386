"""Tests of the directDelivery directive."""
import transaction
from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.tests.support.zcml import ZCMLTestBase
from zope.sendmail.testserver import SMTPServerLayer


class DirectDeliveryDirectiveTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def _load_direct(self, extra=''):
        server = self.layer.server
        self._load(f'<mail:directDelivery mailer="test" {extra}/>'
                   f'<mail:smtpMailer name="test" hostname="{server.host}"'
                   f' port="{server.port}" />')

    def test_registered_under_Mail_with_its_mailer(self):
        from zope.sendmail.interfaces import IDirectMailDelivery

        # The mailer is declared after the delivery and still found.
        self._load_direct()
        delivery = self._delivery()
        self.assertTrue(IDirectMailDelivery.providedBy(delivery))
        self.assertIs(delivery.mailer, self._mailer('test'))
        self.assertFalse(hasattr(delivery, '__Security_checker__'))

    def test_sends_over_the_wire(self):
        self._load_direct('name="direct"')
        message_id = self._delivery('direct').send(
            'a@example.com', ['b@example.com'], 'Subject: zcml\n\nhi\n')
        transaction.commit()
        [message] = self.layer.server.wait_for(1)
        self.assertEqual(message.rcpt_tos, ['b@example.com'])
        self.assertIn(message_id.encode(), message.data)

    def test_unknown_mailer(self):
        with self.assertRaises(ConfigurationError) as caught:
            self._load('<mail:directDelivery mailer="nowhere" />')
        text = str(caught.exception)
        self.assertIn("mailer 'nowhere' is not defined", text)
        self.assertIn('File "<string>", line 4', text)
