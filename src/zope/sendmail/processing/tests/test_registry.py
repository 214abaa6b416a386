"""The one registry of the processor threads running in this process:
each thread is in it while it runs, and the startup starts no second
thread for a queue that has one, however the first was started."""
import os
import shutil
import tempfile
import unittest

from zope.sendmail.testserver import SMTPServerLayer


class ThreadRegistryTests(unittest.TestCase):

    layer = SMTPServerLayer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-registry-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.queue = os.path.join(self.tmp, 'queue')

    def tearDown(self):
        from zope.sendmail.events import dispatcher
        dispatcher.stop()

    def _mailer(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        return SMTPMailer(server.host, server.port, timeout=5)

    def _thread(self, mailer=None):
        from zope.sendmail.processing.thread import QueueProcessorThread
        thread = QueueProcessorThread(mailer=mailer or self._mailer(),
                                      queuePath=self.queue, interval=0.05)
        self.addCleanup(thread.stop, 10)
        return thread

    def test_a_thread_is_registered_while_it_runs(self):
        from zope.sendmail.processing import registry
        from zope.sendmail.stores import queue_key
        thread = self._thread()
        key = queue_key(self.queue)
        self.assertEqual(registry.running(key), [])
        thread.start()
        self.assertEqual(registry.running(key), [thread])
        self.assertIn(thread, registry.running())
        self.assertTrue(thread.stop(10))
        self.assertEqual(registry.running(key), [])

    def test_the_startup_starts_no_second_thread_for_a_queue(self):
        from zope.component import getGlobalSiteManager

        from zope.sendmail import startup
        from zope.sendmail.interfaces import IMailer
        from zope.sendmail.interfaces import IQueueProcessorRegistration
        from zope.sendmail.stores import queue_key
        mailer = self._mailer()
        registry = getGlobalSiteManager()
        registry.registerUtility(mailer, IMailer, 'registry-test')
        self.addCleanup(registry.unregisterUtility, provided=IMailer,
                        name='registry-test')
        thread = self._thread(mailer)
        thread.start()  # by the application itself, say
        startup.register_queue(self.queue, 'registry-test', interval=0.05)
        self.addCleanup(registry.unregisterUtility,
                        provided=IQueueProcessorRegistration,
                        name=queue_key(self.queue))
        startup.start_processor_threads()
        self.assertEqual(startup.running_threads(), {self.queue: thread})
        startup.stop_processor_threads()
        self.assertFalse(thread.is_alive())
        self.assertEqual(startup.running_threads(), {})
