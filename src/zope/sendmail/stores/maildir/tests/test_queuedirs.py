"""Tests of the queue directory checks: a symlinked or world-writable
new/, cur/ or tmp/ is refused by every opener (Maildir, the delivery, the
processor thread, ZCML, the zope-sendmail program), a shared group only
when allowed, and a queue of another user is used with one warning."""
import io
import os
import shutil
import tempfile
import unittest
from contextlib import redirect_stderr
from contextlib import redirect_stdout

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support.zcml import ZCMLTestBase


NOBODY = 65534
AS_ROOT = 'needs root, to give files to another user (tests run as root)'


class QueueDirTestBase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-queuedirs-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')
        self.maildir(create=True)
        self.log = InstalledHandler('zope.sendmail')
        self.addCleanup(self.log.uninstall)

    def maildir(self, **kw):
        from zope.sendmail.stores.maildir.folder import Maildir
        return Maildir(self.queue, **kw)

    def sub(self, name):
        return os.path.join(self.queue, name)

    def refused(self, text, **kw):
        from zope.sendmail.interfaces import UnsafeQueueError
        with self.assertRaises(UnsafeQueueError) as caught:
            self.maildir(**kw)
        self.assertIsInstance(caught.exception, ValueError)
        self.assertIn(f'refusing to use the mail queue {self.queue!r}: ' +
                      text, str(caught.exception))
        return str(caught.exception)


class RefusedTests(QueueDirTestBase):

    def test_a_private_queue_is_used(self):
        self.maildir()
        self.maildir(create=True)
        self.assertEqual(str(self.log), '')

    def test_symlinked_subdirectory(self):
        elsewhere = os.path.join(self.tmp, 'elsewhere')
        os.mkdir(elsewhere, 0o700)
        open(os.path.join(elsewhere, 'precious'), 'w').close()
        for sub in ('new', 'cur', 'tmp'):
            with self.subTest(sub=sub):
                os.rename(self.sub(sub), self.sub(sub + '.real'))
                os.symlink(elsewhere, self.sub(sub))
                text = self.refused(f'{sub}/ is a symbolic link; {sub}/'
                                    f' must be a directory of the queue'
                                    f' itself', create=True)
                self.assertIn('would move and delete the files', text)
                self.refused(f'{sub}/ is a symbolic link',
                             shared_group=True)
                os.unlink(self.sub(sub))
                os.rename(self.sub(sub + '.real'), self.sub(sub))
        self.assertEqual(os.listdir(elsewhere), ['precious'])

    def test_dangling_symlink_is_not_a_missing_directory(self):
        os.rmdir(self.sub('cur'))
        os.symlink(os.path.join(self.tmp, 'nowhere'), self.sub('cur'))
        self.refused('cur/ is a symbolic link', create=True)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'nowhere')))

    def test_the_queue_path_may_be_a_link(self):
        link = os.path.join(self.tmp, 'link')
        os.symlink(self.queue, link)
        from zope.sendmail.stores.maildir.folder import Maildir
        self.assertEqual(list(Maildir(link)), [])

    def test_world_writable(self):
        for sub in ('new', 'cur', 'tmp', ''):
            with self.subTest(sub=sub):
                what = f'{sub}/' if sub else 'the queue directory'
                os.chmod(self.sub(sub), 0o777)
                self.refused(f'{what} is writable by every user (mode 0777):'
                             f' anyone could queue forged mail; make it'
                             f' writable by its owner only (chmod go-w)')
                # Not even for a shared group.
                self.refused(f'{what} is writable by every user',
                             shared_group=True)
                os.chmod(self.sub(sub), 0o1733)  # sticky: still refused
                self.refused(f'{what} is writable by every user (mode 1733)')
                os.chmod(self.sub(sub), 0o700)

    def test_group_writable_only_with_shared_group(self):
        os.chmod(self.sub('new'), 0o2770)
        os.chmod(self.queue, 0o770)
        text = self.refused('the queue directory is writable by its group'
                            ' (mode 0770)')
        self.assertIn('allow it with the shared_group setting (sharedGroup'
                      ' in ZCML, --shared-group)', text)
        maildir = self.maildir(shared_group=True)
        self.assertTrue(maildir.shared_group)
        self.assertEqual(str(self.log), '')

    @unittest.skipUnless(os.geteuid() == 0, AS_ROOT)
    def test_another_users_queue_is_used_with_one_warning(self):
        for path in (self.queue, self.sub('new'), self.sub('cur')):
            os.chown(path, NOBODY, -1)
        for i in range(3):
            self.maildir(create=True)
        self.assertEqual([r.getMessage() for r in self.log.records], [
            f'mail queue {self.queue} belongs to another user (uid'
            f' {NOBODY}), not to this process (uid 0): using it all the'
            f' same'])
        self.assertEqual(self.log.records[0].levelname, 'WARNING')


class OpenersTests(QueueDirTestBase):
    """Each way of opening a queue refuses it, and passes the setting."""

    def setUp(self):
        super().setUp()
        os.chmod(self.sub('cur'), 0o770)

    def test_delivery(self):
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.interfaces import UnsafeQueueError
        with self.assertRaisesRegex(UnsafeQueueError, 'cur/ is writable by'
                                    ' its group'):
            QueuedMailDelivery(self.queue).send(
                'a@example.com', ['b@example.com'], b'Subject: x\n\n')
        transaction.abort()
        delivery = QueuedMailDelivery(self.queue, shared_group=True)
        delivery.send('a@example.com', ['b@example.com'], b'Subject: x\n\n')
        transaction.commit()
        self.assertEqual(len(os.listdir(self.sub('new'))), 1)

    def test_delivery_with_a_factory_of_73s_kind(self):
        # A factory without shared_group is called as 7.3 called it.
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.stores.maildir.folder import Maildir
        calls = []

        def factory(path, create=False):
            calls.append((path, create))
            return Maildir(path, create, shared_group=True)
        QueuedMailDelivery(self.queue, maildir_factory=factory).maildir
        self.assertEqual(calls, [(self.queue, True)])

    def test_processor_thread(self):
        from zope.sendmail.interfaces import UnsafeQueueError
        from zope.sendmail.processing.thread import QueueProcessorThread
        with self.assertRaisesRegex(UnsafeQueueError, 'cur/ is writable'):
            QueueProcessorThread(queuePath=self.queue)
        thread = QueueProcessorThread(queuePath=self.queue,
                                      shared_group=True)
        self.assertTrue(thread.maildir.shared_group)

    def test_processor_arguments(self):
        from zope.sendmail.options import processor_arguments
        self.assertFalse(processor_arguments({})['shared_group'])
        self.assertTrue(processor_arguments({'shared_group': True})
                        ['shared_group'])

    def _console(self, *args):
        from zope.sendmail.console.program import ConsoleApp
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = ConsoleApp(['zope-sendmail', *args],
                                verbose=False).main()
        return status, out.getvalue(), err.getvalue()

    def test_console(self):
        for mode in ([], ['--status'], ['--list'], ['--purge-rejected', '0']):
            with self.subTest(mode=mode):
                status, out, err = self._console(*mode, self.queue)
                self.assertEqual(status, 2)
                self.assertEqual(out, '')
                self.assertEqual(
                    err, f'zope-sendmail: error: refusing to use the mail'
                         f' queue {self.queue!r}: cur/ is writable by its'
                         f' group (mode 0770); make it writable by its owner'
                         f' only (chmod g-w), or, if the group shares the'
                         f' queue, allow it with the shared_group setting'
                         f' (sharedGroup in ZCML, --shared-group)\n')
        status, out, err = self._console('--status', '--shared-group',
                                         self.queue)
        self.assertEqual((status, err), (0, ''))
        self.assertIn('queued:         0', out)

    def test_console_ini_file(self):
        ini = os.path.join(self.tmp, 'zs.ini')
        with open(ini, 'w') as f:
            f.write(f'[app:zope-sendmail]\nshared_group = yes\n'
                    f'queue_path = {self.queue}\n')
        status, out, err = self._console('--status', '--config', ini)
        self.assertEqual((status, err), (0, ''))


class ZCMLTests(ZCMLTestBase):

    def _queued(self, extra=''):
        self._load(f'<mail:queuedDelivery mailer="smtp"'
                   f' queuePath="{self.queue}" {extra}/>')

    def test_refused_at_load_then_allowed(self):
        from zope.configuration.exceptions import ConfigurationError

        from zope.sendmail.stores.maildir.folder import Maildir
        Maildir(self.queue, create=True)
        os.chmod(os.path.join(self.queue, 'new'), 0o770)
        with self.assertRaisesRegex(
                ConfigurationError, f'cannot use {self.queue!r} as a mail'
                f' queue: refusing to use the mail queue .*: new/ is'
                f' writable by its group'):
            self._queued()
        self._queued('sharedGroup="true"')
        delivery = self._delivery()
        self.assertTrue(delivery.shared_group)
        self.assertTrue(delivery.maildir.shared_group)
        thread = self._start()[self.queue]
        self.assertTrue(thread.maildir.shared_group)

    def test_read_exactly(self):
        from zope.configuration.exceptions import ConfigurationError
        with self.assertRaisesRegex(ConfigurationError,
                                    "Invalid value for 'sharedGroup'"):
            self._queued('sharedGroup="tomato"')
