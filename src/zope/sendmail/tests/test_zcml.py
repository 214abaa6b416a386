"""Tests of the mail ZCML directives, meta.zcml and configure.zcml: what is
registered, what reaches the processor threads, and the errors."""
import os
import threading

import transaction
from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.zcml import TEMPLATE
from zope.sendmail.tests.support.zcml import ZCMLTestBase


class SMTPMailerDirectiveTests(ZCMLTestBase):

    def test_schema_is_derived_from_ISMTPMailer(self):
        from zope.configuration import fields
        from zope.schema import getFields

        from zope.sendmail.interfaces import ISMTPMailer
        from zope.sendmail.zcml import ISMTPMailerDirective
        directive = getFields(ISMTPMailerDirective)
        self.assertTrue(directive['name'].required)
        for name, field in getFields(ISMTPMailer).items():
            self.assertEqual(directive[name].default, field.default)
            self.assertFalse(directive[name].required)
        self.assertIsInstance(directive['implicit_tls'], fields.Bool)
        self.assertIsInstance(directive['tls_ca_file'], fields.Path)
        self.assertEqual(set(directive),
                         set(getFields(ISMTPMailer)) | {'name'})

    def test_defaults(self):
        from zope.sendmail.interfaces import ISMTPMailer
        self._load('<mail:smtpMailer name="m" />')
        mailer = self._mailer('m')
        self.assertTrue(ISMTPMailer.providedBy(mailer))
        self.assertEqual((mailer.hostname, mailer.port, mailer.timeout),
                         ('localhost', 25, 10))
        self.assertEqual((mailer.no_tls, mailer.force_tls,
                          mailer.implicit_tls, mailer.tls_verify),
                         (False, False, False, True))
        self.assertIsNone(mailer.username)
        self.assertIsNone(mailer.tls_ca_file)

    def test_every_option_reaches_its_attribute(self):
        import smtplib
        self._load('<mail:smtpMailer name="m" hostname="mx.example.com"'
                   ' port="465" username="u" password="p" implicit_tls="yes"'
                   ' force_tls="true" no_tls="false" timeout="2.5"'
                   ' tls_verify="no" tls_ca_file="/etc/ca.pem" />')
        mailer = self._mailer('m')
        self.assertEqual(
            {a: getattr(mailer, a) for a in (
                'hostname', 'port', 'username', 'password', 'no_tls',
                'force_tls', 'implicit_tls', 'timeout', 'tls_verify',
                'tls_ca_file')},
            dict(hostname='mx.example.com', port=465, username='u',
                 password='p', no_tls=False, force_tls=True,
                 implicit_tls=True, timeout=2.5, tls_verify=False,
                 tls_ca_file='/etc/ca.pem'))
        self.assertIs(mailer.smtp, smtplib.SMTP_SSL)

    def test_implicit_tls_is_not_no_tls(self):
        # 7.3 passed implicit_tls positionally, into no_tls.
        self._load('<mail:smtpMailer name="m" implicit_tls="true" />')
        mailer = self._mailer('m')
        self.assertTrue(mailer.implicit_tls)
        self.assertFalse(mailer.no_tls)

    def test_relative_ca_file_is_relative_to_the_zcml_file(self):
        from zope.configuration import xmlconfig
        path = os.path.join(self.tmp, 'mail.zcml')
        with open(path, 'w') as f:
            f.write(TEMPLATE % '<mail:smtpMailer name="m" tls_ca_file="a"/>')
        xmlconfig.file(path)
        self.assertEqual(self._mailer('m').tls_ca_file,
                         os.path.join(self.tmp, 'a'))

    def test_bad_boolean(self):
        with self.assertRaisesRegex(ConfigurationError,
                                    "Invalid value for 'implicit_tls'"):
            self._load('<mail:smtpMailer name="m" implicit_tls="tomato"/>')

    def test_contradicting_options(self):
        with self.assertRaisesRegex(ConfigurationError,
                                    "mailer 'm': no_tls contradicts"):
            self._load('<mail:smtpMailer name="m" no_tls="yes"'
                       ' implicit_tls="yes" />')

    def test_same_name_twice_conflicts(self):
        from zope.configuration.config import ConfigurationConflictError
        with self.assertRaises(ConfigurationConflictError):
            self._load('<mail:smtpMailer name="m" />'
                       '<mail:smtpMailer name="m" port="26" />')


class QueuedDeliveryDirectiveTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def _load_queued(self, extra='', path=None):
        server = self.layer.server
        self._load(f'<mail:smtpMailer name="test" hostname="{server.host}"'
                   f' port="{server.port}" />'
                   f'<mail:queuedDelivery mailer="test"'
                   f' queuePath="{path or self.queue}" {extra}/>')

    def test_registered_and_the_queue_created(self):
        from zope.sendmail.interfaces import IQueuedMailDelivery
        from zope.sendmail.startup import registered_queues
        self._load_queued()
        delivery = self._delivery()
        self.assertTrue(IQueuedMailDelivery.providedBy(delivery))
        self.assertEqual(delivery.queuePath, self.queue)
        self.assertEqual(sorted(os.listdir(self.queue)),
                         ['cur', 'new', 'tmp'])
        self.assertEqual(registered_queues(), [self.queue])
        delivery.send('a@example.com', ['b@example.com'], b'Subject: q\n\n')
        transaction.commit()
        self.assertEqual(len(os.listdir(os.path.join(self.queue, 'new'))), 1)

    def test_loading_starts_no_thread(self):
        before = set(threading.enumerate())
        self._load_queued()
        self.assertEqual(set(threading.enumerate()), before)

    def test_options_reach_the_thread(self):
        self._load_queued('interval="0.5" retryFirst="7" retryFactor="3"'
                          ' retryCap="60" lifetime="3600" connections="2"'
                          ' maxMessages="9"')
        thread = self._start()[self.queue]
        self.assertTrue(thread.is_alive())
        self.assertEqual((thread.interval, thread.connections,
                          thread.max_messages), (0.5, 2, 9))
        retry = thread.retry
        self.assertEqual((retry.first, retry.factor, retry.cap,
                          retry.lifetime), (7, 3, 60, 3600))
        self.assertIs(thread.mailer, self._mailer('test'))

    def test_default_options(self):
        thread = self._start_default()
        self.assertEqual((thread.interval, thread.connections,
                          thread.max_messages, thread.retry.first),
                         (3.0, 8, 100, 30.0))

    def _start_default(self):
        self._load_queued()
        return self._start()[self.queue]

    def test_queued_mail_is_sent_by_the_thread(self):
        self._load_queued('interval="0.1"')
        self._delivery().send('a@example.com', ['b@example.com'],
                              b'Subject: via the queue\n\n')
        transaction.commit()
        self._start()
        [message] = self.layer.server.wait_for(1, timeout=10)
        self.assertIn(b'Subject: via the queue', message.data)

    def test_started_once_per_queue(self):
        self._load(f'<mail:queuedDelivery mailer="smtp" name="one"'
                   f' queuePath="{self.queue}" />'
                   f'<mail:queuedDelivery mailer="smtp" name="two"'
                   f' queuePath="{self.queue}" />')
        first = self._start()
        self.assertEqual(list(first), [self.queue])
        self.assertEqual(self._start(), first)
        processors = [t for t in threading.enumerate()
                      if t.name == 'zope.sendmail.queue.QueueProcessorThread']
        self.assertEqual(processors, list(first.values()))

    def test_cleanup_stops_and_forgets(self):
        from zope.testing.cleanup import cleanUp

        from zope.sendmail import startup
        thread = self._start_default()
        cleanUp()
        self.assertFalse(thread.is_alive())
        self.assertEqual(startup.running_threads(), {})
        self.assertEqual(startup.registered_queues(), [])

    def test_without_processor_thread(self):
        from zope.sendmail.startup import registered_queues
        self._load_queued('processorThread="false"')
        self.assertEqual(registered_queues(), [])
        self.assertEqual(self._start(), {})

    def test_bad_boolean(self):
        with self.assertRaisesRegex(ConfigurationError,
                                    "Invalid value for 'processorThread'"):
            self._load_queued('processorThread="tomato"')

    def test_bad_retry_settings(self):
        for bad in ('interval="0"', 'retryFactor="0.5"', 'connections="0"'):
            with self.assertRaisesRegex(ConfigurationError, 'Invalid value'):
                self._load_queued(bad)

    def test_unknown_mailer(self):
        from zope.sendmail.startup import registered_queues
        with self.assertRaises(ConfigurationError) as caught:
            self._load(f'<mail:queuedDelivery mailer="nowhere"'
                       f' queuePath="{self.queue}" />')
        self.assertIn("mailer 'nowhere' is not defined",
                      str(caught.exception))
        self.assertIn('File "<string>", line 4', str(caught.exception))
        self.assertEqual(registered_queues(), [])

    def test_queue_under_a_file(self):
        # Tests run as root, whom chmod does not stop: use a path under a
        # regular file.
        path = os.path.join(self.tmp, 'file')
        open(path, 'w').close()
        with self.assertRaisesRegex(
                ConfigurationError,
                f"cannot use '{path}/queue' as a mail queue: .*Not a dir"):
            self._load_queued(path=os.path.join(path, 'queue'))

    def test_queued_and_direct_under_one_name_conflict(self):
        from zope.configuration.config import ConfigurationConflictError
        with self.assertRaises(ConfigurationConflictError) as caught:
            self._load(f'<mail:queuedDelivery mailer="smtp"'
                       f' queuePath="{self.queue}" />'
                       f'<mail:directDelivery mailer="smtp" />')
        self.assertIn("IMailDelivery>, 'Mail')", str(caught.exception))
