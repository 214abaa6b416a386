"""The queues to start live in the component registry in force: they go
away with it, a registry stacked on it sees them, and a queue that cannot
start (its mailer missing, its directory unusable) is logged while the
others start; the application's startup notification never raises."""
import email
import logging
import os
import shutil

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.zcml import META_ONLY
from zope.sendmail.tests.support.zcml import ZCMLTestBase


def _hook_global_registry(registry):
    """Make *registry* the global one, where plone.testing's
    pushGlobalRegistry and popGlobalRegistry put it (zope.component keeps
    it in three module globals): this emulates what test layers of
    applications do, without depending on plone.testing."""
    from zope.component import _api
    from zope.component import getSiteManager
    from zope.component import globalregistry
    _api.base = globalregistry.base = registry
    globalregistry.globalSiteManager = registry
    getSiteManager.reset()


class RegistrationTests(ZCMLTestBase):

    def test_provides_its_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IQueueProcessorRegistration
        from zope.sendmail.startup import QueueProcessorRegistration
        registration = QueueProcessorRegistration(self.queue, 'relay',
                                                  {'interval': 0.5})
        verifyObject(IQueueProcessorRegistration, registration)
        self.assertEqual(repr(registration),
                         f"<QueueProcessorRegistration {self.queue!r}"
                         f" mailer 'relay'>")

    def test_registered_as_a_utility_when_the_action_runs(self):
        from zope.component import getUtility

        from zope.sendmail.interfaces import IQueueProcessorRegistration
        from zope.sendmail.startup import registered_queues
        self._load(f'<mail:queuedDelivery mailer="smtp" interval="0.5"'
                   f' queuePath="{self.queue}" />')
        registration = getUtility(IQueueProcessorRegistration,
                                  os.path.realpath(self.queue))
        self.assertEqual((registration.queuePath, registration.mailer),
                         (self.queue, 'smtp'))
        self.assertEqual(registration.options['interval'], 0.5)
        self.assertEqual(registered_queues(), [self.queue])

    def test_one_registration_per_directory(self):
        from zope.sendmail.startup import registrations
        link = os.path.join(self.tmp, 'link')
        os.makedirs(self.queue)
        os.symlink(self.queue, link)
        self._load(f'<mail:queuedDelivery mailer="smtp" name="one"'
                   f' queuePath="{self.queue}" />'
                   f'<mail:queuedDelivery mailer="smtp" name="two"'
                   f' queuePath="{link}" interval="7" />')
        [(key, registration)] = registrations().items()
        self.assertEqual(key, os.path.realpath(self.queue))
        self.assertEqual(registration.options['interval'], 7)


class RegistryInForceTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def setUp(self):
        super().setUp()
        self.pushed = []
        self.records = self._log()

    def tearDown(self):
        # Before the base class's cleanUp, which resets whichever registry
        # is the global one at the time.
        while self.pushed:
            self._pop()
        super().tearDown()

    def _log(self):
        from zope.testing.loggingsupport import InstalledHandler
        handler = InstalledHandler('zope.sendmail.startup',
                                   level=logging.INFO)
        self.addCleanup(handler.uninstall)
        return handler.records

    def _push(self):
        from zope.component import globalregistry
        current = globalregistry.base
        pushed = globalregistry.BaseGlobalComponents(
            name=f'pushed-{len(self.pushed)}', bases=(current,))
        self.pushed.append(current)
        _hook_global_registry(pushed)
        return pushed

    def _pop(self):
        _hook_global_registry(self.pushed.pop())

    def _configure(self, *queues, meta_only=False):
        """Load a configuration of *queues*, each ``(mailer, path,
        delivery name)``, each mailer sending to the test server."""
        from zope.configuration import xmlconfig
        server = self.layer.server
        body = ''.join(
            f'<mail:smtpMailer name="{mailer}" hostname="{server.host}"'
            f' port="{server.port}" />'
            f'<mail:queuedDelivery name="{name}" mailer="{mailer}"'
            f' queuePath="{path}" interval="0.1" />'
            for mailer, path, name in queues)
        if meta_only:
            xmlconfig.string(META_ONLY % body)
        else:
            self._load(body)

    def _notify(self):
        """Both startup events, as Zope sends them; the running threads."""
        import zope.event
        from zope.processlifetime import DatabaseOpenedWithRoot
        from zope.processlifetime import ProcessStarting
        zope.event.notify(DatabaseOpenedWithRoot(None))
        zope.event.notify(ProcessStarting())
        from zope.sendmail.startup import running_threads
        return running_threads()

    def _send(self, name, subject):
        self._delivery(name).send('a@example.com', ['b@example.com'],
                                  f'Subject: {subject}\n\nHi\n')
        transaction.commit()

    def _errors(self):
        return [r for r in self.records if r.levelno >= logging.WARNING]

    def test_a_popped_registry_takes_its_queues_along(self):
        # A test layer configured a queue in a registry of its own, and is
        # gone; the next configuration starts: its queue starts, alone.
        other = os.path.join(self.tmp, 'other')
        self._push()
        self._configure(('layer-relay', other, 'Mail'))
        self._pop()
        self._configure(('relay', self.queue, 'Mail'))
        from zope.sendmail.startup import registered_queues
        self.assertEqual(registered_queues(), [self.queue])
        self.assertEqual(list(self._notify()), [self.queue])
        self.assertEqual(self._errors(), [])
        self._send('Mail', 'after the layer')
        [message] = self.layer.server.wait_for(1, timeout=10)
        self.assertIn(b'Subject: after the layer', message.data)

    def test_a_pushed_registry_sees_the_queues_of_its_bases(self):
        from zope.sendmail.startup import registered_queues
        from zope.sendmail.startup import start_processor_threads
        other = os.path.join(self.tmp, 'other')
        self._configure(('relay', self.queue, 'Mail'))
        pushed = self._push()
        self._configure(('layer-relay', other, 'Layer'), meta_only=True)
        self.assertEqual(registered_queues(), sorted([self.queue, other]))
        # The subscribers of the base serve: none added to the pushed one,
        # so that each event starts the threads once.
        self.assertEqual([r for r in pushed.registeredHandlers()
                          if r.handler is start_processor_threads], [])
        threads = self._notify()
        self.assertEqual(sorted(threads), sorted([self.queue, other]))
        self.assertEqual(self._errors(), [])
        self._send('Mail', 'base queue')
        self._send('Layer', 'pushed queue')
        subjects = sorted(
            email.message_from_bytes(m.data)['Subject']
            for m in self.layer.server.wait_for(2, timeout=10))
        self.assertEqual(subjects, ['base queue', 'pushed queue'])
        self._pop()
        self.assertEqual(registered_queues(), [self.queue])

    def test_a_registry_reset_between_configurations(self):
        from zope.component import globalregistry
        self._configure(('first', self.queue, 'Mail'))
        # What zope.component's own cleanup does, without this package's.
        globalregistry.base.__init__('base')
        other = os.path.join(self.tmp, 'other')
        self._configure(('second', other, 'Mail'))
        self.assertEqual(list(self._notify()), [other])
        self.assertEqual(self._errors(), [])

    def test_a_queue_without_its_mailer_does_not_stop_the_others(self):
        from zope.component import getGlobalSiteManager

        from zope.sendmail.interfaces import IMailer
        broken = os.path.join(self.tmp, 'broken')
        self._configure(('relay', self.queue, 'Mail'),
                        ('gone', broken, 'Broken'))
        self.assertTrue(getGlobalSiteManager().unregisterUtility(
            provided=IMailer, name='gone'))
        self.assertEqual(list(self._notify()), [self.queue])
        [error] = self._errors()
        self.assertEqual(error.levelname, 'ERROR')
        self.assertEqual(
            error.getMessage(),
            f"the queue processor of {broken} (mailer 'gone') cannot start:"
            f" no IMailer utility is named 'gone' in the component registry"
            f" in force")
        self.assertIsNone(error.exc_info)
        # The good queue sends; mail for the broken one says why it waits.
        self._send('Mail', 'sent')
        self.assertEqual(len(self.layer.server.wait_for(1, timeout=10)), 1)
        self._send('Broken', 'waits')
        warning = self._errors()[-1]
        self.assertEqual(warning.levelname, 'WARNING')
        self.assertIn(f'mail committed to {broken} waits: its queue'
                      f' processor thread could not start: no IMailer',
                      warning.getMessage())

    def test_a_queue_whose_directory_is_unusable(self):
        broken = os.path.join(self.tmp, 'broken')
        self._configure(('relay', self.queue, 'Mail'),
                        ('other', broken, 'Broken'))
        shutil.rmtree(broken)
        with open(broken, 'w') as f:
            f.write('not a queue')
        self.assertEqual(list(self._notify()), [self.queue])
        [error] = self._errors()
        self.assertEqual(error.levelname, 'ERROR')
        self.assertIn(f"the queue processor of {broken} (mailer 'other')"
                      f" cannot start: ", error.getMessage())
        self.assertIsNone(error.exc_info)
        # Put right, it starts with the next event; the other is not
        # started twice.
        before = self._notify()[self.queue]
        os.remove(broken)
        self.assertEqual(self._notify(), {self.queue: before,
                                          broken: self._notify()[broken]})

    def test_an_unexpected_error_is_logged_with_its_traceback(self):
        from zope.sendmail.startup import register_queue
        self._configure(('relay', self.queue, 'Mail'))
        bug = os.path.join(self.tmp, 'bug')
        register_queue(bug, 'relay', no_such_option=1)
        self.assertEqual(list(self._notify()), [self.queue])
        [error] = self._errors()
        self.assertIn(f"the queue processor of {bug} (mailer 'relay')"
                      f" cannot start: unexpected error", error.getMessage())
        self.assertIs(error.exc_info[0], TypeError)

    def test_start_processor_threads_called_directly_never_raises(self):
        from zope.sendmail.startup import register_queue
        from zope.sendmail.startup import start_processor_threads
        register_queue(self.queue, 'nowhere')
        self.assertIsNone(start_processor_threads())
        [error] = self._errors()
        self.assertIn("(mailer 'nowhere') cannot start", error.getMessage())
