"""The demo a new user runs first (bin/demo), run as a test."""
import io
import os
import tempfile
import threading
import unittest


class DemoTests(unittest.TestCase):

    def _callFUT(self, argv):
        from zope.sendmail.console.demo import main
        out = io.StringIO()
        return main(argv, out=out), out.getvalue()

    def _demo_dirs(self):
        return {n for n in os.listdir(tempfile.gettempdir())
                if n.startswith('zope-sendmail-demo-')}

    def test_runs_and_cleans_up(self):
        threads_before = set(threading.enumerate())
        dirs_before = self._demo_dirs()
        status, output = self._callFUT([])
        self.assertEqual(status, 0, output)
        for expected in (
                'processor threads running after loading: 0',
                'Application started: 1 queue processor thread(s).',
                'ABORTED   ',
                'The relay received 3 message(s):',
                'Subject: Welcome, Ann',
                'IMailErrorEvent for reject@example.com: all recipients'
                ' refused',
                'IMailSentEvent  for dora@example.com'):
            self.assertIn(expected, output)
        self.assertNotIn('carl@example.com        Subject', output)
        self.assertEqual(self._demo_dirs(), dirs_before)
        leftover = [t for t in set(threading.enumerate()) - threads_before
                    if t.is_alive()]
        self.assertEqual(leftover, [])

    def test_with_an_external_relay(self):
        from zope.sendmail.testserver import SMTPTestServer
        with SMTPTestServer() as relay:
            relay.local_part_rules = False
            status, output = self._callFUT(
                ['--relay', f'{relay.host}:{relay.port}'])
            self.assertEqual(status, 0, output)
            self.assertIn(f'Relaying to {relay.host}:{relay.port}.', output)
            relay.wait_for(4)

    def test_bad_relay_option(self):
        import contextlib
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            with self.assertRaises(SystemExit) as caught:
                self._callFUT(['--relay', 'nowhere'])
        self.assertEqual(caught.exception.code, 2)
        self.assertIn("--relay must be HOST:PORT, not 'nowhere'",
                      stderr.getvalue())
