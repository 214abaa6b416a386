"""Tests of how a run of the zope-sendmail program ends: the exit statuses,
the logging, the progress line, and the password, which reaches the relay
and nothing else."""
import io
import logging
import os
import signal
import threading
import unittest
from unittest import mock

import transaction

from zope.sendmail.tests.support.console import PASSWORD
from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.console import pass_result
from zope.sendmail.testserver import TEST_PASSWORD
from zope.sendmail.testserver import TEST_USER
from zope.sendmail.testserver import TLSSMTPServerLayer


class PasswordTests(ConsoleTestBase):

    def test_from_a_file(self):
        path = os.path.join(self.tmp, 'pw')
        with open(path, 'w') as f:
            f.write(PASSWORD + '\nignored\n')
        app = self._app('--username', 'u', '--password-file', path,
                        self.queue)
        self.assertEqual(app.mailer.kwargs['password'], PASSWORD)
        ini = self._ini(f'username = u\npassword_file = {path}\n')
        app = self._app('--config', ini, self.queue)
        self.assertEqual(app.mailer.kwargs['password'], PASSWORD)

    def test_from_the_environment(self):
        with mock.patch.dict(os.environ, {'ZS_PASSWORD': PASSWORD}):
            app = self._app('--username', 'u', '--password-env',
                            'ZS_PASSWORD', self.queue)
            ini = self._ini('username = u\npassword = old\n')
            app2 = self._app('--config', ini, '--password-env',
                             'ZS_PASSWORD', self.queue)
        self.assertEqual(app.mailer.kwargs['password'], PASSWORD)
        self.assertEqual(app2.mailer.kwargs['password'], PASSWORD)

    def test_problems(self):
        missing = os.path.join(self.tmp, 'missing')
        self.assertIn(f"cannot read the password file {missing!r}",
                      self._error('--username', 'u', '--password-file',
                                  missing, self.queue))
        empty = os.path.join(self.tmp, 'empty')
        open(empty, 'w').close()
        self.assertIn('is empty', self._error(
            '--username', 'u', '--password-file', empty, self.queue))
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertIn('environment variable NOPE (the password) is not',
                          self._error('--username', 'u', '--password-env',
                                      'NOPE', self.queue))
        self.assertIn('give the password one way only', self._error(
            '--config', self._ini(f'password = x\npassword_file = {empty}\n'),
            self.queue))
        self.assertIn('not allowed with', self._error(
            '--password', 'x', '--password-env', 'V', self.queue))

    def test_not_read_to_look_at_the_queue(self):
        missing = os.path.join(self.tmp, 'missing')
        status, output, app = self._run('--username', 'u', '--password-file',
                                        missing, '--status', self.queue)
        self.assertEqual(status, 0, output)
        self.assertIn('queued:         0', output)

    def test_never_shown(self):
        ini = self._ini(f'username = u\npassword = {PASSWORD}%\n')
        error = self._error('--config', ini, self.queue)
        self.assertIn('a "%" must be written "%%"', error)
        self.assertNotIn(PASSWORD, error)
        ini = self._ini(f'username = u\npassword = {PASSWORD}\n  more\n')
        error = self._error('--config', ini, self.queue)
        self.assertIn('password: must be one line', error)
        self.assertNotIn(PASSWORD, error)


class ExitStatusTests(ConsoleTestBase):

    def _status(self, *script, args=(), **kw):
        status, output, app = self._run(*args, self.queue, script=script,
                                        **kw)
        return status, self.thread.instances[0].passes

    def test_all_sent_then_a_pass_that_finds_nothing(self):
        self.assertEqual(self._status(pass_result(sent=2)), (0, 2))

    def test_nothing_to_do(self):
        self.assertEqual(self._status(), (0, 1))

    def test_messages_waiting_for_a_retry(self):
        open(os.path.join(self.queue, 'cur', '1.2.host'), 'w').close()
        self.assertEqual(self._status(pass_result(deferred=1)), (75, 1))

    def test_rejected_or_failed(self):
        self.assertEqual(self._status(pass_result(sent=1, rejected=1)), (1, 2))
        self.assertEqual(self._status(pass_result(failed=1)), (1, 1))

    def test_relay_unavailable(self):
        from zope.sendmail.interfaces import TemporaryDeliveryError
        self.assertEqual(self._status(
            pass_result(sent=1),
            pass_result(error=TemporaryDeliveryError('connection refused')),
            pass_result(sent=1)), (75, 2))

    def test_relay_refuses_the_settings(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self.assertEqual(self._status(
            pass_result(rejected=1),
            pass_result(error=MailerConfigurationError('535 no'))), (78, 2))

    def test_interrupted_once_run(self):
        if threading.current_thread() is not threading.main_thread():
            self.skipTest('signals need the main thread')
        before = signal.getsignal(signal.SIGTERM)
        status, output, app = self._run(
            self.queue, script=[pass_result(sent=1)] * 5,
            during_pass=lambda: os.kill(os.getpid(), signal.SIGTERM))
        [thread] = self.thread.instances
        self.assertEqual((status, thread.passes), (75, 1))
        self.assertTrue(thread.interrupted)
        self.assertIs(signal.getsignal(signal.SIGTERM), before)

    def test_queue_trouble_is_one_line(self):
        def vanish():
            raise PermissionError(13, 'Permission denied', self.queue)
        status, output, app = self._run(self.queue, during_pass=vanish)
        self.assertEqual(status, 1)
        self.assertRegex(output, r'^\S+ \S+ ERROR zope.sendmail.console'
                                 r'.program: .*Permission denied: .*queue.\n$')

    def test_a_bug_is_logged_with_its_traceback(self):
        def bug():
            raise RuntimeError('oops')
        status, output, app = self._run(self.queue, during_pass=bug)
        self.assertEqual(status, 1)
        self.assertIn('unexpected error\nTraceback', output)

    def test_usage_and_help(self):
        self.assertEqual(self._run('--bogus')[0], 2)
        self.assertEqual(self._run('--help')[0], 0)

    def test_73_names(self):
        from zope.sendmail.console.program import ConsoleApp
        from zope.sendmail.queue import ConsoleApp as QueueConsoleApp
        from zope.sendmail.queue import run
        self.assertIs(QueueConsoleApp, ConsoleApp)
        with mock.patch('sys.stderr', io.StringIO()):
            with self.assertRaises(SystemExit) as caught:
                run(['zope-sendmail', '--bogus'])
        self.assertEqual(caught.exception.code, 2)


class OutputTests(ConsoleTestBase):

    def _levels(self, *args):
        from zope.sendmail.console.output import _Handler
        seen = []

        def look():
            seen.extend(h.level for h in logging.getLogger().handlers
                        if isinstance(h, _Handler))
        self._run(*args, self.queue, during_pass=look)
        return seen

    def test_log_levels(self):
        self.assertEqual(self._levels(), [logging.WARNING])
        self.assertEqual(self._levels('-v'), [logging.INFO])
        self.assertEqual(self._levels('-q'), [logging.ERROR])
        from zope.sendmail.console.output import _Handler
        self.assertFalse([h for h in logging.getLogger().handlers
                          if isinstance(h, _Handler)])

    def test_daemon_log_levels(self):
        from zope.sendmail.console.cmdline import Settings
        from zope.sendmail.console.output import configure_logging
        root = logging.getLogger()
        for verbosity, level in ((0, logging.INFO), (1, logging.DEBUG),
                                 (-1, logging.ERROR)):
            settings = Settings('daemon', None, verbosity, self.queue, None,
                                {})
            with configure_logging(settings, None):
                self.assertEqual(root.handlers[-1].level, level)

    def _tty_run(self, verbose=True):
        from zope.sendmail.events import MailSentEvent

        class TTY(io.StringIO):
            def isatty(self):
                return True

        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)

        def send():  # the thread's events (through the progress line)
            kwargs = self.thread.instances[0].kwargs
            kwargs.get('notify', dispatcher.dispatch)(MailSentEvent('x'))
        tty = TTY()
        with mock.patch('sys.stderr', tty):
            app = self._app(self.queue, script=[pass_result(sent=1)],
                            during_pass=send)
            app.verbose = verbose
            self.assertEqual(app.main(), 0)
        return tty.getvalue()

    def test_progress_on_a_terminal(self):
        output = self._tty_run()
        self.assertIn('\rzope-sendmail: 1 sent, 0 deferred, 0 rejected',
                      output)
        self.assertTrue(output.endswith('\n'))
        self.assertEqual(self._tty_run(verbose=False), '')


class RelayTests(unittest.TestCase):
    """Against a relay requiring STARTTLS and AUTH."""

    layer = TLSSMTPServerLayer

    def setUp(self):
        import shutil
        import tempfile
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-console-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)
        QueuedMailDelivery(self.queue).send(
            'a@example.com', ['b@example.com'], 'Subject: s\n\nbody\n')
        transaction.commit()

    def _run(self, *args, env=None):
        import contextlib

        from zope.sendmail.console.program import ConsoleApp
        server = self.layer.server
        out = io.StringIO()
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out), \
                mock.patch.dict(os.environ, env or {}):
            status = ConsoleApp([
                'zope-sendmail', '--hostname', server.host, '--port',
                str(server.port), '--tls-ca-file', server.ca_file,
                '--username', TEST_USER, '-v', *args, self.queue]).main()
        return status, out.getvalue()

    def test_password_from_a_file(self):
        path = os.path.join(self.tmp, 'password')
        with open(path, 'w') as f:
            f.write(TEST_PASSWORD + '\n')
        status, output = self._run('--password-file', path)
        self.assertEqual(status, 0, output)
        [message] = self.layer.server.messages
        self.assertEqual(message.auth_user, TEST_USER)
        self.assertNotIn(TEST_PASSWORD, output)

    def test_refused_login_blames_no_message_and_hides_the_password(self):
        status, output = self._run('--password-env', 'ZS_PW',
                                   env={'ZS_PW': PASSWORD})
        self.assertEqual(status, 78, output)
        self.assertIn('configuration problem', output)
        self.assertNotIn(PASSWORD, output)
        self.assertEqual(len(os.listdir(os.path.join(self.queue, 'new'))), 1)
        self.assertEqual(self.layer.server.messages, [])
