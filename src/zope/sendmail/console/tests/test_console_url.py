"""``zope-sendmail`` given a PostgreSQL URL as its queue (on the command
line or as ``queue_path`` in the INI file): what it reads, what it warns
of, what it refuses, and that no line it prints holds the URL's password.
(Sending and the operators' commands on a real database are in
``functional/tests/test_postgres_wiring.py``.)"""
import os

from zope.sendmail.tests.support.console import ConsoleTestBase


PASSWORD = 'console-pW-53cr3t'
# A database no one answers for: nothing is ever sent there.
URL = (f'postgresql://mailer:{PASSWORD}@/site?host=/nonexistent-socket-dir'
       f'&connect_timeout=2&queue=shop')


class URLSettingsTests(ConsoleTestBase):

    def test_a_url_is_the_queue(self):
        app = self._app('--status', URL)
        self.assertEqual(app.queue_path, URL)  # 7.3's attribute, as given
        self.assertEqual(app.queue_name,
                         'postgresql://mailer:***@/site?host=/nonexistent-'
                         'socket-dir&connect_timeout=2&queue=shop')

    def test_a_password_on_the_command_line_is_warned_of(self):
        warnings = self._app('--status', URL).settings.warnings
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn('the queue URL on the command line holds a password,'
                      ' which other users see in ps', warnings[0])
        self.assertNotIn(PASSWORD, warnings[0])
        self.assertEqual(self._app('--status', 'postgresql:///site')
                         .settings.warnings, [])

    def test_queue_path_url_in_the_ini_file(self):
        ini = self._ini(f'queue_path = {URL}\n')
        os.chmod(ini, 0o600)
        app = self._app('--config', ini, '--status')
        self.assertEqual(app.queue_path, URL)
        self.assertEqual(app.settings.warnings, [])
        # Readable by others, a file holding a URL's password is warned
        # of, as one holding the relay's password is.
        os.chmod(ini, 0o644)
        warnings = self._app('--config', ini, '--status').settings.warnings
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn('holds a password and is readable by', warnings[0])

    def test_a_percent_in_an_ini_url_never_shows_the_url(self):
        # configparser interpolates: a "%" of a URL is written "%%"; its
        # error would quote the text after the "%".
        error = self._error('--config', self._ini(
            f'queue_path = postgresql://mailer:{PASSWORD}%41@/site'
            f'?host=%2Frun\n'), '--status')
        self.assertIn('queue_path: a "%" must be written "%%"', error)
        self.assertNotIn(PASSWORD, error)
        app = self._app('--config', self._ini(
            'queue_path = postgresql:///site?host=%%2Frun%%2Fpostgresql\n'),
            '--status')
        self.assertEqual(app.queue_path,
                         'postgresql:///site?host=%2Frun%2Fpostgresql')

    def test_create_schema_mode(self):
        self.assertEqual(self._app('--create-schema', URL).settings.mode,
                         'create_schema')
        self.assertIn('not allowed with argument',
                      self._error('--create-schema', '--status', URL))

    def test_create_schema_of_a_directory_is_refused(self):
        error = self._error('--create-schema', self.queue)
        self.assertIn('--create-schema is for a PostgreSQL queue (a'
                      ' postgresql:// URL), not the directory', error)

    def test_no_output_holds_the_password(self):
        # Whatever happens to a database no one answers for (psycopg
        # missing, the connection refused), what is printed and logged
        # names the queue without its password.
        for mode in ((), ('--status',), ('--list',), ('--create-schema',),
                     ('--check',), ('--status', '--json'),
                     ('--requeue-rejected',), ('--purge-rejected', '1d')):
            status, output, app = self._run(*mode, URL)
            self.assertNotEqual(status, 0, (mode, output))
            self.assertNotIn(PASSWORD, output, mode)
            self.assertIn('postgresql://mailer:***@', output, mode)
        bad = f'postgresql://mailer:{PASSWORD}@/site?queue='
        status, output, app = self._run('--status', bad)
        self.assertEqual(status, 2, output)
        self.assertNotIn(PASSWORD, output)
        self.assertIn('a queue name is 1 to', output)
