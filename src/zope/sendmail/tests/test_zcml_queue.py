"""``<mail:queuedDelivery>`` names its queue with exactly one of
``queuePath`` (a Maildir directory) and ``queue`` (a PostgreSQL URL); each
refuses the other's kind, and no error shows a URL's password.  (A queue
by URL at work is in ``functional/tests/test_postgres_wiring.py``.)"""
import os

from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.tests.support.zcml import ZCMLTestBase


PASSWORD = 'zcml-pW-53cr3t'
URL = f'postgresql://mailer:{PASSWORD}@db.example.com/site?queue=shop'


class QueueAttributeTests(ZCMLTestBase):

    def _refused(self, attributes):
        with self.assertRaises(ConfigurationError) as caught:
            self._load(f'<mail:queuedDelivery mailer="smtp" {attributes}'
                       f' />')
        text = str(caught.exception)
        self.assertNotIn(PASSWORD, text)
        self.assertEqual(os.listdir(self.tmp), [])
        return text

    def test_schema(self):
        from zope.schema import getFields

        from zope.sendmail.zcml import IQueuedDeliveryDirective
        fields = getFields(IQueuedDeliveryDirective)
        self.assertFalse(fields['queuePath'].required)
        self.assertFalse(fields['queue'].required)

    def test_neither(self):
        self.assertIn('exactly one of queuePath (a Maildir directory) and'
                      ' queue (a PostgreSQL URL): neither was given',
                      self._refused(''))

    def test_both(self):
        self.assertIn('both were given', self._refused(
            f'queue="{URL}" queuePath="{self.queue}"'))

    def test_a_url_as_queue_path_is_refused_naming_queue(self):
        text = self._refused(f'queuePath="{URL}"')
        self.assertIn("Invalid value for 'queuePath'", text)
        self.assertIn('a PostgreSQL URL goes in queue="postgresql://..."',
                      text)
        text = self._refused('queuePath="postgres:///site"')
        self.assertIn('a PostgreSQL URL goes in queue=', text)

    def test_a_path_as_queue_is_refused_naming_queue_path(self):
        text = self._refused(f'queue="{self.queue}"')
        self.assertIn("Invalid value for 'queue'", text)
        self.assertIn('a Maildir directory goes in queuePath instead', text)

    def test_a_url_naming_no_queue(self):
        text = self._refused(
            f'queue="postgresql://mailer:{PASSWORD}@db.example.com/site'
            f'?queue="')
        self.assertIn('a queue name is 1 to', text)

    def test_a_bad_setting_names_the_queue_without_its_password(self):
        text = self._refused(f'queue="{URL}" leaseTimeout="10"'
                             f' leaseRenew="20"')
        self.assertIn('postgresql://mailer:***@', text)

    def test_queue_path_still_takes_a_path(self):
        self._load(f'<mail:queuedDelivery mailer="smtp"'
                   f' queuePath="{self.queue}" processorThread="false" />')
        self.assertEqual(self._delivery().queuePath, self.queue)
        self.assertTrue(os.path.isdir(os.path.join(self.queue, 'new')))
