"""Tests of the zope-sendmail program's settings: what reaches the mailer
and the processor from the command line and the INI file, which wins, and
the errors.  `ConsoleTestBase` runs the program in-process with fakes."""
import os
import shutil
from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.console import PASSWORD


class SettingsTests(ConsoleTestBase):

    def test_defaults(self):
        from zope.sendmail.options import MAILER_OPTIONS
        app = self._app(self.queue)
        self.assertEqual(app.mailer.kwargs,
                         {o.name: o.default for o in MAILER_OPTIONS})
        self.assertEqual(app.settings.mode, 'once')
        self.assertEqual(
            (app.hostname, app.port, app.username, app.interval,
             app.force_tls, app.no_tls, app.queue_path, app.daemon),
            ('localhost', 25, None, 3.0, False, False, self.queue, False))

    def test_every_mailer_option_reaches_the_mailer(self):
        ca = self._ini('')
        app = self._app('--hostname', 'mail.example.com', '--port', '587',
                        '--username', 'me', '--password', PASSWORD,
                        '--implicit-tls', '--timeout', '2.5',
                        '--no-tls-verify', '--tls-ca-file', ca, self.queue)
        self.assertEqual(app.mailer.kwargs, dict(
            hostname='mail.example.com', port=587, username='me',
            password=PASSWORD, no_tls=False, force_tls=False,
            implicit_tls=True, timeout=2.5, tls_verify=False,
            tls_ca_file=ca, oauth2_token=None, oauth2_token_command=None))

    def test_every_processor_option_reaches_the_processor(self):
        status, output, app = self._run(
            '--interval', '0.5', '--retry-first', '7', '--retry-factor', '3',
            '--retry-cap', '99', '--lifetime', '3600', '--connections', '2',
            '--max-messages', '9', self.queue)
        self.assertEqual(status, 0, output)
        kwargs = dict(app.processor_options, mailer=app.mailer,
                      queuePath=self.queue)
        retry = kwargs['retry']
        self.assertEqual((retry.first, retry.factor, retry.cap,
                          retry.lifetime), (7, 3, 99, 3600))
        self.assertEqual((kwargs['interval'], kwargs['connections'],
                          kwargs['max_messages']), (0.5, 2, 9))

    def test_every_option_is_an_ini_key(self):
        from zope.sendmail.console.inifile import INI_KEYS
        from zope.sendmail.interfaces import ISMTPMailer
        from zope.sendmail.options import IQueueProcessorOptions
        from zope.schema import getFieldNames
        names = getFieldNames(ISMTPMailer) + getFieldNames(
            IQueueProcessorOptions)
        self.assertEqual(sorted(set(names) - set(INI_KEYS)), [])
        for key in ('interval', 'hostname', 'port', 'username', 'password',
                    'force_tls', 'no_tls', 'queue_path'):  # 7.3's
            self.assertIn(key, INI_KEYS)

    def test_zcml_shares_the_processor_options(self):
        from zope.sendmail.options import PROCESSOR_OPTIONS
        from zope.sendmail.zcml import IQueuedDeliveryDirective
        for option in PROCESSOR_OPTIONS:
            field = IQueuedDeliveryDirective[
                {'retry_first': 'retryFirst', 'retry_factor': 'retryFactor',
                 'retry_cap': 'retryCap', 'max_messages': 'maxMessages',
                 'lease_timeout': 'leaseTimeout', 'lease_renew': 'leaseRenew',
                 'lease_margin': 'leaseMargin', 'max_rate': 'maxRate',
                 'shared_group': 'sharedGroup'}
                .get(option.name, option.name)]
            self.assertEqual(
                (getattr(field, 'min', None), field.default),
                (getattr(option.field, 'min', None), option.field.default))

    def test_ini_file_with_every_key(self):
        ini = self._ini(
            f'hostname = ini.example.com\nport = 2525\nusername = u\n'
            f'password = 50%%\nforce_tls = on\ntimeout = 4\n'
            f'tls_verify = no\ninterval = 9\nretry_first = 11\n'
            f'connections = 3\nmax_messages = 4\nqueue_path = {self.queue}\n')
        app = self._app('--config', ini)
        self.assertEqual(app.queue_path, self.queue)
        kw = app.mailer.kwargs
        self.assertEqual(
            (kw['hostname'], kw['port'], kw['username'], kw['password'],
             kw['force_tls'], kw['timeout'], kw['tls_verify']),
            ('ini.example.com', 2525, 'u', '50%', True, 4.0, False))
        options = app.processor_options
        self.assertEqual((options['interval'], options['retry'].first,
                          options['connections'], options['max_messages']),
                         (9.0, 11.0, 3, 4))

    def test_command_line_wins_over_ini(self):
        other = os.path.join(self.tmp, 'other')
        shutil.copytree(self.queue, other)
        ini = self._ini(f'port = 2525\nhostname = ini.example.com\n'
                        f'interval = 9\nqueue_path = {self.queue}\n')
        app = self._app('--config', ini, '--port', '26', '--interval', '1',
                        other)
        self.assertEqual((app.port, app.hostname, app.interval,
                          app.queue_path),
                         (26, 'ini.example.com', 1.0, other))

    def test_tls_mode_on_command_line_replaces_the_ini_one(self):
        ini = self._ini('force_tls = true\n')
        app = self._app('--config', ini, '--no-tls', self.queue)
        kw = app.mailer.kwargs
        self.assertEqual((kw['no_tls'], kw['force_tls']), (True, False))
        app = self._app('--config', ini, self.queue)
        self.assertTrue(app.mailer.kwargs['force_tls'])

    def test_config_from_stdin_and_default_section(self):
        app = self._app('--config', '-', self.queue, stdin=(
            '[DEFAULT]\nhere = /srv\nport = 2600\n'
            '[app:zope-sendmail]\nhostname = %(here)s.example.com\n'))
        self.assertEqual((app.hostname, app.port), ('/srv.example.com', 2600))
        self.assertEqual(app.settings.config, '<stdin>')

    def test_exact_booleans(self):
        for text, value in [('true', True), ('Yes', True), ('ON', True),
                            ('1', True), ('false', False), ('No', False),
                            ('off', False), ('0', False), ('', False)]:
            app = self._app('--config', self._ini(f'no_tls = {text}\n'),
                            self.queue)
            self.assertIs(app.mailer.kwargs['no_tls'], value, text)
        for text in ('tomato', 't', 'y', '2', 'truee'):
            error = self._error('--config', self._ini(f'no_tls = {text}\n'),
                                self.queue)
            self.assertIn(f"zs.ini: [app:zope-sendmail] no_tls: {text!r} is"
                          f" not a boolean", error)

    def test_ini_errors_name_file_and_key(self):
        for text, expected in [
                ('port = abc\n', "port: 'abc': not a whole number"),
                ('interval = -1\n', "interval: '-1': must be at least"),
                ('lifetime = nan\n', 'lifetime: nan is not a finite'),
                ('hostnme = x\n', "unknown key 'hostnme' in"
                                  " [app:zope-sendmail]; did you mean"
                                  " 'hostname'?"),
                ('daemon = true\n', "unknown key 'daemon'")]:
            error = self._error('--config', self._ini(text), self.queue)
            self.assertIn('zs.ini', error)
            self.assertIn(expected, error)
        path = os.path.join(self.tmp, 'none.ini')
        with open(path, 'w') as f:
            f.write('[app:other]\nport = 1\n')
        self.assertIn('none.ini: no [app:zope-sendmail] section',
                      self._error('--config', path, self.queue))
        with open(path, 'w') as f:
            f.write('garbage\n')
        self.assertIn('none.ini, line 1: cannot parse',
                      self._error('--config', path, self.queue))
        self.assertIn("--config: cannot read '/no/such.ini'",
                      self._error('--config', '/no/such.ini', self.queue))

    def test_command_line_errors(self):
        self.assertEqual(self._error('--bogus', self.queue),
                         'unrecognized arguments: --bogus')
        self.assertIn('not allowed with argument',
                      self._error('--daemon', '--status', self.queue))
        self.assertIn("argument --timeout: 'soon': not a number",
                      self._error('--timeout', 'soon', self.queue))
        self.assertIn("argument --timeout: 'inf': not a finite number",
                      self._error('--timeout', 'inf', self.queue))
        from zope.sendmail.smtp.mailer import SMTPMailer
        self.assertIn('no_tls contradicts', self._error(
            '--config', self._ini('no_tls = 1\nimplicit_tls = 1\n'),
            self.queue, mailer=SMTPMailer))
        self.assertIn("cannot read '/no/ca.pem', the file of tls-ca-file",
                      self._error('--tls-ca-file', '/no/ca.pem', self.queue))

    def test_modes(self):
        for args, mode, age in [((), 'once', None), (('--daemon',), 'daemon',
                                                     None),
                                (('--list',), 'list', None),
                                (('--purge-rejected', '0'),
                                 'purge_rejected', 0),
                                (('--purge-rejected', '2h'),
                                 'purge_rejected', 7200)]:
            settings = self._app(*args, self.queue).settings
            self.assertEqual((settings.mode, settings.purge_age), (mode, age))

    def test_help(self):
        status, output, app = self._run('--help')
        self.assertEqual(status, 0)
        self.assertIn('exit status:', output)
        self.assertIn('--password-file FILE', output)
