"""A queue in PostgreSQL, chosen by its URL wherever a queue directory is
taken, end to end on the throwaway cluster of the PostgreSQL layer: a
queued delivery configured in ZCML committing in real transactions, sent by
the processor thread the startup subscriber starts; the ``zope-sendmail``
program sending once, as a process of its own, and its operators'
commands; ``--create-schema``; two queues of one database kept apart.
Every URL here holds a password (the cluster trusts its local users, so
libpq never sends it): no output, log line, repr or error may show it.
"""
import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresTestCase
from zope.sendmail.tests.support.zcml import TEMPLATE
from zope.sendmail.testserver import SMTPTestServer


PASSWORD = 'wiring-pW-53cr3t'
SENDER = 'shop@example.com'


def with_password(url):
    """*url* with `PASSWORD` in its user information."""
    scheme, _, rest = url.partition('://')
    userinfo, at, hosts = rest.partition('@')
    assert at and ':' not in userinfo, url
    return f'{scheme}://{userinfo}:{PASSWORD}@{hosts}'


class WiringTestBase(PostgresTestCase):

    def setUp(self):
        super().setUp()  # skipped where PostgreSQL cannot run
        import zope.event
        from zope.component.event import dispatch
        from zope.testing.cleanup import cleanUp
        self.subscribers = zope.event.subscribers[:]
        cleanUp()
        if dispatch not in zope.event.subscribers:
            zope.event.subscribers.append(dispatch)
        self.addCleanup(self._cleanUp)
        transaction.abort()
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-pgwiring-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = SMTPTestServer().start()
        self.addCleanup(self.server.stop)
        self.log = InstalledHandler('zope.sendmail', level=logging.DEBUG)
        self.addCleanup(self.log.uninstall)
        self.outputs = []  # everything printed, checked for the password

    def _cleanUp(self):
        import zope.event
        from zope.testing.cleanup import cleanUp

        from zope.sendmail.events import dispatcher
        transaction.abort()
        cleanUp()  # stops the processor threads
        dispatcher.stop()
        zope.event.subscribers[:] = self.subscribers

    def tearDown(self):
        logged = '\n'.join(
            record.getMessage() + (
                logging.Formatter().formatException(record.exc_info)
                if record.exc_info else '')
            for record in self.log.records)
        self.assertNotIn(PASSWORD, logged)
        for output in self.outputs:
            self.assertNotIn(PASSWORD, output)
        super().tearDown()

    def url(self, queue=None):
        return with_password(self.layer.url(queue))

    def queue(self, url, *recipients, count=1):
        """Commit *count* messages to *recipients* into the queue *url*,
        one transaction; return their message ids."""
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(url)
        self.addCleanup(delivery.store.close)  # its connections
        ids = [delivery.send(SENDER, list(recipients or ['jane@example.org']),
                             f'Subject: {n}\r\n\r\nbody {n}\r\n'.encode())
               for n in range(count)]
        transaction.commit()
        return ids

    def program(self, *args):
        """Run ``zope-sendmail`` in this process; return its exit status
        and what it printed and logged."""
        from zope.sendmail.console.program import ConsoleApp
        out = io.StringIO()
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out):
            try:
                status = ConsoleApp(['zope-sendmail', *args],
                                    verbose=False).main()
            except SystemExit as e:
                status = e.code
        self.outputs.append(out.getvalue())
        return status, out.getvalue()

    def received(self):
        return sorted(m.data.split(b'\r\n\r\n', 1)[1]
                      for m in self.server.messages)


class ZCMLQueueTests(WiringTestBase):

    def test_queued_delivery_by_url_sent_by_the_startup_thread(self):
        import zope.event
        import zope.processlifetime
        from zope.component import getUtility
        from zope.configuration import xmlconfig

        from zope.sendmail.interfaces import IMailDelivery
        from zope.sendmail.startup import running_threads
        url = self.url()
        xmlconfig.string(TEMPLATE % f'''
            <mail:smtpMailer name="relay" hostname="{self.server.host}"
                port="{self.server.port}" />
            <mail:queuedDelivery name="Mail" mailer="relay" interval="0.5"
                queue="{url.replace('&', '&amp;')}" />''')
        delivery = getUtility(IMailDelivery, 'Mail')
        self.addCleanup(delivery.store.close)  # its connections
        self.assertEqual(delivery.queuePath, url)
        self.assertNotIn(PASSWORD, repr(delivery))
        zope.event.notify(zope.processlifetime.ProcessStarting())
        [(name, thread)] = running_threads().items()
        for text in (name, repr(thread), thread.name, thread.queuePath):
            self.assertNotIn(PASSWORD, text)
        # The store's own threads (its listener) too.
        for running in threading.enumerate():
            self.assertNotIn(PASSWORD, running.name)
        events = []
        zope.event.subscribers.append(events.append)
        # Aborted: nothing queued, nothing sent.
        delivery.send(SENDER, ['nobody@example.org'], b'Subject: no\r\n\r\n')
        transaction.abort()
        delivery.send(SENDER, ['jane@example.org'],
                      b'Subject: hello\r\n\r\nHello Jane!\r\n')
        delivery.send(SENDER, ['reject-me@example.org'],
                      b'Subject: refused\r\n\r\nNo.\r\n')
        transaction.commit()
        [message] = self.server.wait_for(1, timeout=15)
        self.assertEqual(message.rcpt_tos, ['jane@example.org'])
        self.assertIn(b'Hello Jane!', message.data)
        self.assertTrue(wait_until(lambda: len(events) == 2, 15), events)
        self.assertEqual(sorted(type(e).__name__ for e in events),
                         ['MailErrorEvent', 'MailSentEvent'])
        for event in events:
            self.assertNotIn(PASSWORD, repr(vars(event)))
        status, output = self.program('--status', url)
        self.assertIn('queued:         0', output)
        self.assertIn('rejected:       1', output)
        self.assertEqual(len(self.server.messages), 1)

    def test_a_thread_never_started_is_warned_of_by_the_queue_name(self):
        from zope.component import getUtility
        from zope.configuration import xmlconfig

        from zope.sendmail.interfaces import IMailDelivery
        url = self.url()
        xmlconfig.string(TEMPLATE % f'''
            <mail:queuedDelivery name="Mail" mailer="smtp"
                queue="{url.replace('&', '&amp;')}" />''')
        delivery = getUtility(IMailDelivery, 'Mail')
        self.addCleanup(delivery.store.close)  # its connections
        delivery.send(SENDER, ['jane@example.org'], b'Subject: x\r\n\r\n')
        transaction.commit()
        [warning] = [r.getMessage() for r in self.log.records
                     if r.levelno == logging.WARNING]
        self.assertIn('mail committed to postgresql://postgres:***@',
                      warning)
        self.assertIn('has not been started', warning)


class ConsoleQueueTests(WiringTestBase):

    def run_program(self, *args):
        """Run ``zope-sendmail *args`` as a process of its own, sending to
        the test server; return its exit status and its log."""
        done = subprocess.run(
            [sys.executable, '-c',
             'from zope.sendmail.queue import run; run()', '-v', *args,
             '--hostname', self.server.host, '--port', str(self.server.port)],
            env=child_env(), capture_output=True, text=True, timeout=60,
            cwd=self.tmp)
        self.outputs.append(done.stdout + done.stderr)
        return done.returncode, done.stderr

    def test_one_shot_run_as_a_process(self):
        # On the command line, a URL without a password: other users see
        # command lines.
        bare = self.layer.url()
        self.queue(with_password(bare), count=3)
        status, log = self.run_program(bare)
        self.assertEqual(status, 0, log)
        self.assertIn('3 sent, 0 deferred, 0 rejected', log)
        self.assertEqual(len(self.server.wait_for(3)), 3)
        # In an INI file only its owner reads, a URL with a password.
        url = with_password(bare)
        self.queue(url, count=2)
        ini = os.path.join(self.tmp, 'zs.ini')
        with open(os.open(ini, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            f.write('[app:zope-sendmail]\nqueue_path = '
                    + url.replace('%', '%%') + '\n')
        status, log = self.run_program('--config', ini)
        self.assertEqual(status, 0, log)
        self.assertIn('postgresql://postgres:***@', log)
        self.assertIn('2 sent, 0 deferred, 0 rejected', log)
        self.assertEqual(len(self.server.messages), 5)

    def test_daemon_is_woken_by_another_process_commit(self):
        # A long interval: only the database's notification of the commit
        # (this process's, to the daemon's) makes it send at once.
        bare = self.layer.url()
        errpath = os.path.join(self.tmp, 'daemon.log')
        with open(errpath, 'wb') as err:
            daemon = subprocess.Popen(
                [sys.executable, '-c',
                 'from zope.sendmail.queue import run; run()', bare,
                 '--daemon', '--interval', '60', '--hostname',
                 self.server.host, '--port', str(self.server.port)],
                env=child_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, cwd=self.tmp)

        def log():
            with open(errpath, encoding='utf-8', errors='replace') as f:
                return f.read()

        def stop():
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait(10)
        self.addCleanup(stop)
        # Its first pass is over when it says it is processing.
        self.assertTrue(wait_until(lambda: 'processing' in log(), 30),
                        log())
        self.queue(with_password(bare), count=2)
        self.server.wait_for(2, timeout=15)
        daemon.terminate()
        self.assertEqual(daemon.wait(30), 0, log())
        self.outputs.append(log())
        self.assertEqual(len(self.server.messages), 2)

    def test_operators_commands(self):
        url = self.url()
        self.queue(url, 'reject-me@example.org', count=2)
        self.queue(url, 'jane@example.org')
        status, output = self.program('--status', url)
        self.assertEqual(status, 0, output)
        self.assertIn('queue:          postgresql://', output)
        self.assertIn('queued:         3', output)
        status, output = self.program(url, '--hostname', self.server.host,
                                      '--port', str(self.server.port))
        self.assertEqual(status, 1, output)  # two rejected
        self.assertEqual(len(self.server.messages), 1)
        status, output = self.program('--list', url)
        self.assertEqual(status, 0, output)
        self.assertEqual(output.count('state:        rejected'), 2, output)
        self.assertIn('to:           reject-me@example.org', output)
        self.assertIn('2 messages', output)
        status, output = self.program('--requeue-rejected', url)
        self.assertEqual(status, 0, output)
        self.assertIn('2 rejected messages requeued', output)
        status, output = self.program('--status', url)
        self.assertIn('queued:         2', output)
        self.assertIn('rejected:       0', output)
        self.server.local_part_rules = True
        self.program(url, '--hostname', self.server.host,
                     '--port', str(self.server.port))
        status, output = self.program('--purge-rejected', '0', url)
        self.assertEqual(status, 0, output)
        self.assertIn('2 rejected messages deleted', output)
        status, output = self.program('--status', url)
        for state in ('queued', 'deferred', 'rejected'):
            self.assertRegex(output, f'{state}: +0\\n')

    def test_two_queues_of_one_database_are_kept_apart(self):
        a, b = self.url('wiring-a'), self.url('wiring-b')
        self.queue(a, 'jane@example.org', count=2)
        self.queue(b, 'john@example.org', count=3)
        self.assertIn('queued:         2', self.program('--status', a)[1])
        self.assertIn('queued:         3', self.program('--status', b)[1])
        status, output = self.program(a, '--hostname', self.server.host,
                                      '--port', str(self.server.port))
        self.assertEqual(status, 0, output)
        self.assertEqual({tuple(m.rcpt_tos) for m in self.server.messages},
                         {('jane@example.org',)})
        self.assertEqual(len(self.server.messages), 2)
        self.assertIn('queued:         3', self.program('--status', b)[1])
        self.assertIn('queued:         0', self.program('--status', a)[1])

    def test_create_schema(self):
        dbname = f'wiring_{os.getpid()}'
        self.layer.psql(f'CREATE DATABASE {dbname}')
        self.addCleanup(self.layer.psql, f'DROP DATABASE {dbname}')
        url = with_password(self.layer.cluster.url('q', dbname=dbname))
        # An operator's command needs the tables; it says how to make
        # them.
        status, output = self.program('--status', url)
        self.assertEqual(status, 2, output)
        self.assertIn('zope-sendmail --create-schema', output)
        status, output = self.program('--create-schema', url)
        self.assertEqual(status, 0, output)
        self.assertIn('created the tables of the mail queue', output)
        self.assertIn('postgresql://postgres:***@', output)
        status, output = self.program('--create-schema', url)
        self.assertEqual(status, 0, output)
        self.assertIn('the tables of the mail queue are there already',
                      output)
        status, output = self.program('--status', url)
        self.assertEqual(status, 0, output)
        # A database that does not exist: said, with the queue's name.
        status, output = self.program(
            '--create-schema', url.replace(dbname, dbname + '_none'))
        self.assertEqual(status, 2, output)
        self.assertIn('postgresql://postgres:***@', output)


class ThreadQueueTests(WiringTestBase):

    def mailer(self):
        from zope.sendmail.mailer import SMTPMailer
        return SMTPMailer(self.server.host, self.server.port)

    def test_set_queue_path_of_73(self):
        from zope.sendmail.delivery import QueueProcessorThread
        url = self.url()
        self.queue(url, count=2)
        thread = QueueProcessorThread()
        thread.setMailer(self.mailer())
        thread.setQueuePath(url)
        self.addCleanup(thread.stop)
        self.assertIsNone(thread.maildir)
        self.assertNotIn(PASSWORD, repr(thread) + thread.queuePath)
        result = thread.process_once()
        self.assertEqual(result.counts['sent'], 2, result.counts)
        self.assertEqual(len(self.server.messages), 2)

    def test_constructor_and_the_wake_up_of_a_commit(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        url = self.url()
        # A long interval: only the commit's wake-up sends at once.
        thread = QueueProcessorThread(interval=60.0, mailer=self.mailer(),
                                      queuePath=url)
        thread.start()
        self.addCleanup(thread.stop, 10)
        self.queue(url)
        self.server.wait_for(1, timeout=10)

    def test_the_lease_settings_reach_the_store(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        thread = QueueProcessorThread(
            mailer=self.mailer(), queuePath=self.url(), lease_timeout=30.0,
            lease_renew=4.0)
        self.addCleanup(thread.stop)
        self.assertEqual((thread.store.lease_timeout,
                          thread.store.lease_renew), (30.0, 4.0))
        self.assertIsNone(thread.lease)  # no processor lease: all work
