"""7.3's public behaviour kept: the RuntimeErrors of the mailer, the queue
thread's one pass and name, the console program's exits, and what
``Maildir(create=True)`` accepts.  Each test is named after the 7.3
behaviour it keeps."""
import contextlib
import io
import os
import shutil
import tempfile
import unittest

from zope.sendmail.testserver import SMTPServerLayer


MESSAGE = b'Message-Id: <m1@example.com>\r\nSubject: test\r\n\r\nHello\r\n'


def _mailer(server, **kw):
    from zope.sendmail.mailer import SMTPMailer
    return SMTPMailer(server.host, server.port, timeout=5, **kw)


class MailerRuntimeErrorTests(unittest.TestCase):
    """Where 7.3 raised RuntimeError, the classified error is one too."""

    layer = SMTPServerLayer

    def tearDown(self):
        self.layer.server.reset()

    def _send(self, mailer):
        with self.assertRaises(RuntimeError) as caught:
            mailer.send('alice@example.com', ['bob@example.com'], MESSAGE)
        return caught.exception

    def test_force_tls_without_starttls_raises_RuntimeError(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        error = self._send(_mailer(self.layer.server, force_tls=True))
        self.assertIsInstance(error, MailerConfigurationError)
        self.assertIn('STARTTLS', str(error))

    def test_username_without_esmtp_raises_RuntimeError(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        server = self.layer.server
        server.refuse_ehlo = True
        error = self._send(_mailer(server, username='u', password='p'))
        self.assertIsInstance(error, MailerConfigurationError)
        self.assertIn('AUTH', str(error))

    def test_ehlo_and_helo_refused_raises_RuntimeError(self):
        from zope.sendmail.interfaces import GreetingRefusedError
        from zope.sendmail.interfaces import TemporaryDeliveryError
        server = self.layer.server
        server.refuse_ehlo = server.refuse_helo = True
        error = self._send(_mailer(server))
        # Still classified: the relay's problem, retried later.
        self.assertIsInstance(error, GreetingRefusedError)
        self.assertIsInstance(error, TemporaryDeliveryError)
        self.assertEqual(error.code, 554)
        self.assertEqual(self.layer.server.messages, [])


class QueueDirTestBase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-compat73-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)

    def _queue_message(self):
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        transaction.abort()
        QueuedMailDelivery(self.queue).send(
            'alice@example.com', ['bob@example.com'],
            b'Subject: queued\r\n\r\nHello\r\n')
        transaction.commit()


class QueueProcessorThreadTests(QueueDirTestBase):

    layer = SMTPServerLayer

    def test_run_forever_false_makes_one_pass(self):
        from zope.sendmail.queue import QueueProcessorThread
        self._queue_message()
        thread = QueueProcessorThread()
        thread.setMailer(_mailer(self.layer.server))
        thread.setQueuePath(self.queue)
        self.assertIsNone(thread.run(forever=False))
        self.assertFalse(thread.is_alive())
        [message] = self.layer.server.wait_for(1, timeout=10)
        self.assertIn(b'Subject: queued', message.data)
        self.assertEqual(os.listdir(os.path.join(self.queue, 'new')), [])

    def test_thread_name_is_zope_sendmail_queue_QueueProcessorThread(self):
        from zope.sendmail.queue import QueueProcessorThread
        self.assertEqual(QueueProcessorThread().name,
                         'zope.sendmail.queue.QueueProcessorThread')


class ConsoleExitTests(QueueDirTestBase):

    layer = SMTPServerLayer

    def _capture(self, function, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                result = function(*args)
            except SystemExit as e:
                return 'exit', e.code, out.getvalue()
        return 'returned', result, out.getvalue()

    def test_ConsoleApp_raises_SystemExit_2_for_a_bad_command_line(self):
        from zope.sendmail.queue import ConsoleApp
        how, code, output = self._capture(
            ConsoleApp, ['zope-sendmail', '--bogus', self.queue])
        self.assertEqual((how, code), ('exit', 2))
        self.assertIn('--bogus', output)
        how, code, output = self._capture(
            ConsoleApp, ['zope-sendmail', '--username', 'u', self.queue])
        self.assertEqual((how, code), ('exit', 2))
        self.assertIn('username and password go together', output)

    def test_ConsoleApp_raises_SystemExit_0_for_help(self):
        from zope.sendmail.queue import ConsoleApp
        how, code, output = self._capture(ConsoleApp,
                                          ['zope-sendmail', '--help'])
        self.assertEqual((how, code), ('exit', 0))
        self.assertIn('usage: zope-sendmail', output)

    def _argv(self, port):
        return ['zope-sendmail', '--hostname', self.layer.server.host,
                '--port', str(port), self.queue]

    def test_run_returns_after_success(self):
        from zope.sendmail.queue import run
        self._queue_message()
        how, result, output = self._capture(
            run, self._argv(self.layer.server.port))
        self.assertEqual((how, result), ('returned', None), output)
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)

    def test_run_exits_non_zero_on_failure(self):
        from zope.sendmail.queue import run
        from zope.sendmail.tests.support import closed_port
        self._queue_message()
        how, code, output = self._capture(run, self._argv(closed_port()))
        self.assertEqual((how, code), ('exit', 75), output)


class MaildirCreateTests(QueueDirTestBase):

    def _create(self, path):
        from zope.sendmail.maildir import Maildir
        return Maildir(path, create=True)

    def test_Maildir_create_refuses_a_regular_file_with_ValueError(self):
        with open(self.queue, 'w') as f:
            f.write('not a queue')
        with self.assertRaises(ValueError) as caught:
            self._create(self.queue)
        self.assertIn(repr(self.queue), str(caught.exception))
        self.assertIn('not a directory', str(caught.exception))

    def test_Maildir_create_refuses_a_non_Maildir_directory(self):
        os.mkdir(self.queue)
        with open(os.path.join(self.queue, 'notes.txt'), 'w'):
            pass
        with self.assertRaises(ValueError) as caught:
            self._create(self.queue)
        self.assertIn(repr(self.queue), str(caught.exception))
        self.assertIn('notes.txt', str(caught.exception))
        self.assertEqual(os.listdir(self.queue), ['notes.txt'])

    def test_Maildir_create_makes_an_empty_directory_a_queue(self):
        os.mkdir(self.queue)
        os.mkdir(os.path.join(self.queue, 'lost+found'))  # a fresh volume
        maildir = self._create(self.queue)
        self.assertEqual(sorted(os.listdir(self.queue)),
                         ['cur', 'lost+found', 'new', 'tmp'])
        self.assertEqual(list(maildir), [])

    def test_Maildir_create_makes_a_missing_path_a_queue(self):
        self._create(self.queue)
        self.assertEqual(sorted(os.listdir(self.queue)),
                         ['cur', 'new', 'tmp'])

    def test_zcml_queuePath_refuses_a_non_Maildir_directory(self):
        from zope.configuration import xmlconfig
        from zope.configuration.exceptions import ConfigurationError
        from zope.testing.cleanup import cleanUp
        os.mkdir(self.queue)
        with open(os.path.join(self.queue, 'notes.txt'), 'w'):
            pass
        self.addCleanup(cleanUp)
        with self.assertRaises(ConfigurationError) as caught:
            xmlconfig.string(f'''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mail="http://namespaces.zope.org/mail">
  <include package="zope.sendmail" />
  <mail:queuedDelivery mailer="smtp" queuePath="{self.queue}" />
</configure>''')
        self.assertIn(self.queue, str(caught.exception))
        self.assertIn('not a Maildir', str(caught.exception))
