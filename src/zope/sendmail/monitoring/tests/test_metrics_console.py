"""``zope-sendmail`` keeping metrics, as processes against the SMTP test
server: a daemon scraped over HTTP (``--metrics-port``) counting the
messages it sent, a one-shot run writing ``--metrics-file``, the options'
rules, and the error without the extra."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import urllib.request

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.monitoring import parse


_SERVING = re.compile(r'serving the metrics on http://127\.0\.0\.1:(\d+)/')

# The program where prometheus_client cannot be imported, as without the
# extra zope.sendmail[metrics].
WITHOUT_EXTRA = textwrap.dedent('''\
    import sys
    sys.modules['prometheus_client'] = None  # import raises ImportError
    from zope.sendmail.queue import run
    run(['zope-sendmail'] + sys.argv[1:])
''')


class ProcessTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-metrics-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        server = self.layer.server
        self.relay = f'{server.host}:{server.port}'
        self.relay_args = ['--hostname', server.host, '--port',
                           str(server.port)]

    def _queue(self, count):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(self.queue, durable=False)
        for n in range(count):
            delivery.send('alice@example.com', ['bob@example.com'],
                          f'Subject: {n}\r\n\r\nbody\r\n'.encode())
        transaction.commit()

    def _program(self, *args):
        return [sys.executable, '-m', 'zope.sendmail.console', *args]

    def _scrape(self, port):
        url = f'http://127.0.0.1:{port}/metrics'
        with urllib.request.urlopen(url, timeout=5) as response:
            return parse(response.read().decode())

    def test_a_daemon_scraped_over_http(self):
        self._queue(3)
        prom = os.path.join(self.tmp, 'zope_sendmail.prom')
        daemon = subprocess.Popen(
            self._program('--daemon', '--interval', '0.5', '--metrics-port',
                          '0', '--metrics-file', prom, *self.relay_args,
                          self.queue),
            stderr=subprocess.PIPE, text=True, env=child_env())
        self.addCleanup(daemon.stderr.close)
        self.addCleanup(daemon.wait, 10)
        self.addCleanup(daemon.kill)
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = daemon.stderr.readline()
            if not line:
                break
            match = _SERVING.search(line)
            port = match and int(match.group(1))
        self.assertIsNotNone(port, 'the daemon never said where it serves')
        sent = ('zope_sendmail_sent_total',
                (('queue', self.queue), ('relay', self.relay)))
        queued = ('zope_sendmail_messages',
                  (('queue', self.queue), ('state', 'queued')))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            scraped = self._scrape(port)
            if scraped.get(sent) == 3 and scraped.get(queued) == 0:
                break
            time.sleep(0.2)
        self.assertEqual(scraped.get(sent), 3, scraped)
        self.assertEqual(len(self.layer.server.messages), 3)
        self.assertEqual(scraped[(
            'zope_sendmail_send_seconds_count', (('relay', self.relay),))], 3)
        self.assertEqual(scraped[(
            'zope_sendmail_queue_readable', (('queue', self.queue),))], 1)
        # The textfile too, every --interval seconds.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(prom):
                with open(prom) as f:
                    if parse(f.read()).get(sent) == 3:
                        break
            time.sleep(0.2)
        else:
            self.fail('the daemon did not write its textfile in time')
        daemon.send_signal(signal.SIGTERM)
        daemon.stderr.read()  # to its end: the daemon exits
        self.assertEqual(daemon.wait(20), 0)
        with self.assertRaises(OSError):
            self._scrape(port)  # stopped with the daemon

    def test_a_run_writes_the_textfile(self):
        self._queue(2)
        path = os.path.join(self.tmp, 'zope_sendmail.prom')
        child = subprocess.run(
            self._program('--metrics-file', path, *self.relay_args,
                          self.queue),
            capture_output=True, text=True, env=child_env(), timeout=60)
        self.assertEqual(child.returncode, 0, child)
        with open(path) as f:
            written = parse(f.read())
        self.assertEqual(written[('zope_sendmail_sent_total', (
            ('queue', self.queue), ('relay', self.relay)))], 2)
        self.assertEqual(written[('zope_sendmail_messages', (
            ('queue', self.queue), ('state', 'queued')))], 0)
        self.assertEqual(sorted(os.listdir(self.tmp)),
                         ['queue', 'zope_sendmail.prom'])

    def test_without_the_extra(self):
        path = os.path.join(self.tmp, 'zope_sendmail.prom')
        child = subprocess.run(
            [sys.executable, '-c', WITHOUT_EXTRA, '--metrics-file', path,
             *self.relay_args, self.queue],
            capture_output=True, text=True, env=child_env(), timeout=60)
        self.assertEqual(child.returncode, 2, child)
        self.assertEqual(child.stderr, "zope-sendmail: error: the metrics"
                         " need prometheus_client: pip install"
                         " 'zope.sendmail[metrics]'\n")
        self.assertFalse(os.path.exists(path))
        # Without the options, the program does not miss it.
        self._queue(1)
        child = subprocess.run(
            [sys.executable, '-c', WITHOUT_EXTRA, *self.relay_args,
             self.queue], capture_output=True, text=True, env=child_env(),
            timeout=60)
        self.assertEqual(child.returncode, 0, child)


# A ZCML site asking for metrics where prometheus_client cannot be
# imported: argv[1] the queue directory.
ZCML_WITHOUT_EXTRA = textwrap.dedent('''\
    import sys
    sys.modules['prometheus_client'] = None  # import raises ImportError
    from zope.configuration import xmlconfig
    from zope.configuration.exceptions import ConfigurationError
    try:
        xmlconfig.string("""
            <configure xmlns="http://namespaces.zope.org/zope"
                       xmlns:mail="http://namespaces.zope.org/mail">
              <include package="zope.sendmail" />
              <mail:queuedDelivery queuePath="%s" mailer="smtp"
                                   metrics="true" />
            </configure>""" % sys.argv[1])
    except ConfigurationError as e:
        print(' '.join(str(e).split()))
''')

# Everything a site and the program use without metrics: prometheus_client
# is never imported (argv[1] the queue directory).
NOTHING_IMPORTED = textwrap.dedent('''\
    import sys
    from zope.configuration import xmlconfig
    xmlconfig.string("""
        <configure xmlns="http://namespaces.zope.org/zope"
                   xmlns:mail="http://namespaces.zope.org/mail">
          <include package="zope.sendmail" />
          <mail:queuedDelivery queuePath="%s" mailer="smtp" />
        </configure>""" % sys.argv[1])
    from zope.sendmail.startup import start_processor_threads
    from zope.sendmail.startup import stop_processor_threads
    start_processor_threads()
    stop_processor_threads()
    from zope.sendmail.console.program import ConsoleApp
    for mode in (['--status'], ['--status', '--json'], ['--check']):
        ConsoleApp(['zope-sendmail'] + mode + [sys.argv[1]]).main()
    print('prometheus_client' in sys.modules)
''')


class WithoutTheExtraTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-metrics-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')

    def _child(self, code):
        return subprocess.run(
            [sys.executable, '-c', code, self.queue], capture_output=True,
            text=True, env=child_env(), timeout=60)

    def test_zcml_names_the_extra(self):
        child = self._child(ZCML_WITHOUT_EXTRA)
        self.assertEqual(child.returncode, 0, child)
        self.assertIn(
            'metrics="true" needs prometheus_client: pip install'
            " 'zope.sendmail[metrics]'", child.stdout)

    def test_nothing_imports_it_unless_asked(self):
        child = self._child(NOTHING_IMPORTED)
        self.assertEqual(child.returncode, 0, child)
        self.assertEqual(child.stdout.splitlines()[-1], 'False', child)


class OptionTests(ConsoleTestBase):

    def test_rules(self):
        self.assertIn('--metrics-port is for --daemon',
                      self._error('--metrics-port', '9100', self.queue))
        self.assertIn('--metrics-address goes with --metrics-port',
                      self._error('--daemon', '--metrics-address', '::1',
                                  self.queue))
        self.assertIn('--metrics-file is for sending runs',
                      self._error('--status', '--metrics-file', 'x.prom',
                                  self.queue))
        self.assertIn("'70000' is no port",
                      self._error('--daemon', '--metrics-port', '70000',
                                  self.queue))

    def test_ini_keys(self):
        ini = self._ini('metrics_port = 9100\nmetrics_address = ::1\n'
                        'metrics_file = /var/lib/node/zs.prom\n')
        app = self._app('--config', ini, '--daemon', self.queue)
        self.assertEqual(app.settings.metrics, {
            'port': 9100, 'address': '::1',
            'file': '/var/lib/node/zs.prom'})
        self.assertIsNotNone(app.metrics)
        # One file serves every mode: --status leaves them unused, a run
        # that ends writes the file only.
        app = self._app('--config', ini, '--status', self.queue)
        self.assertEqual(app.settings.metrics, dict.fromkeys(
            ('port', 'address', 'file')))
        self.assertIsNone(app.metrics)
        app = self._app('--config', ini, self.queue)
        self.assertEqual(app.settings.metrics, {
            'port': None, 'address': None, 'file': '/var/lib/node/zs.prom'})
        self.assertIn('metrics_port: ', self._error(
            '--config', self._ini('metrics_port = soon\n'), '--daemon',
            self.queue))

    def test_a_port_in_use(self):
        import socket
        taken = socket.socket()
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        port = taken.getsockname()[1]
        status, output, app = self._run('--daemon', '--metrics-port',
                                        str(port), self.queue)
        self.assertEqual(status, 2, output)
        self.assertIn(f'error: cannot serve the metrics on 127.0.0.1:{port}:'
                      f' Address already in use', output)
        self.assertEqual(self.thread.instances, [])  # nothing started
