"""Tests of zope-sendmail's fallback relays: --fallback-relay and the INI
file's fallback_relays, and a run of the program sending through one."""
import os
import subprocess
import sys

import transaction

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import closed_port
from zope.sendmail.tests.support.console import PASSWORD
from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.testserver import SMTPServerLayer


class FallbackRelaySettingsTests(ConsoleTestBase):

    def _relays(self, app):
        from zope.sendmail.interfaces import IFailoverMailer
        self.assertTrue(IFailoverMailer.providedBy(app.mailer))
        return [(m.kwargs['hostname'], m.kwargs['port'])
                for m in app.mailer.mailers]

    def test_command_line(self):
        app = self._app('--hostname', 'main.example', '--port', '587',
                        '--username', 'u', '--password', PASSWORD,
                        '--force-tls', '--fallback-relay', 'b.example:2525',
                        '--fallback-relay', 'c.example',
                        '--fallback-relay', '[2001:db8::1]:465', self.queue)
        self.assertEqual(self._relays(app), [
            ('main.example', 587), ('b.example', 2525), ('c.example', 587),
            ('2001:db8::1', 465)])
        # The same TLS and login options for each.
        for mailer in app.mailer.mailers:
            self.assertEqual((mailer.kwargs['username'],
                              mailer.kwargs['password'],
                              mailer.kwargs['force_tls']),
                             ('u', PASSWORD, True))
        self.assertEqual(app.mailer.retry_period, 60.0)

    def test_none(self):
        app = self._app(self.queue)
        self.assertEqual(app.mailer.kwargs['hostname'], 'localhost')

    def test_ini_file(self):
        ini = self._ini('hostname = main.example\n'
                        'fallback_relays = b.example:2525, c.example\n'
                        '  d.example:26\n')
        app = self._app('--config', ini, self.queue)
        self.assertEqual(self._relays(app), [
            ('main.example', 25), ('b.example', 2525), ('c.example', 25),
            ('d.example', 26)])
        # The command line wins.
        app = self._app('--config', ini, '--fallback-relay', 'e.example',
                        self.queue)
        self.assertEqual(self._relays(app), [('main.example', 25),
                                             ('e.example', 25)])

    def test_bad_relays(self):
        for relay in ('b.example:99999', 'b.example:x', ':25', '[::1',
                      'b.example:0'):
            with self.subTest(relay):
                self.assertIn('--fallback-relay',
                              self._error('--fallback-relay', relay,
                                          self.queue))
        ini = self._ini('fallback_relays = b.example:25 c.example:port\n')
        self.assertEqual(
            self._error('--config', ini, self.queue),
            f"{ini}: [app:zope-sendmail] fallback_relays: 'c.example:port':"
            f" the port must be a number from 1 to 65535")

    def test_in_help(self):
        status, output, app = self._run('--help')
        self.assertEqual(status, 0)
        self.assertIn('--fallback-relay HOST:PORT', output)


class FallbackRelayRunTests(ConsoleTestBase):
    """The program, as a process, with its relay down."""

    layer = SMTPServerLayer

    def test_sends_through_the_fallback_relay(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.events import dispatcher
        self.addCleanup(dispatcher.stop)
        transaction.abort()
        delivery = QueuedMailDelivery(self.queue)
        for n in range(3):
            delivery.send('a@example.com', ['b@example.com'],
                          f'Subject: fallback {n}\n\nbody\n')
        transaction.commit()
        server = self.layer.server
        down = closed_port()
        child = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console', '--hostname',
             '127.0.0.1', '--port', str(down), '--fallback-relay',
             f'127.0.0.1:{server.port}', self.queue],
            env=child_env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60)
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(len(server.messages), 3)
        self.assertIn(f'relay 127.0.0.1:{down} skipped for 60 s',
                      child.stderr)
        self.assertEqual(os.listdir(os.path.join(self.queue, 'new')), [])
