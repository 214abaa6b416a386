"""A queue named by a PostgreSQL URL is shown without its password by
every object that holds it (a delivery, a processor's registration), by
the startup's log lines, and by the registry's list of queues; none of
this needs the database.  (The processor thread, the console and the
store on a real database: ``functional/tests/test_postgres_wiring.py``.)
"""
import logging

from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.tests.support.zcml import ZCMLTestBase


PASSWORD = 'names-pW-53cr3t'
# No server answers there.
URL = (f'postgresql://mailer:{PASSWORD}@/site?host=/nonexistent-socket-dir'
       f'&connect_timeout=2&queue=shop')
MASKED = 'postgresql://mailer:***@/site?host=/nonexistent-socket-dir'


class QueueURLNameTests(ZCMLTestBase):

    def setUp(self):
        super().setUp()
        self.log = InstalledHandler('zope.sendmail', level=logging.DEBUG)
        self.addCleanup(self.log.uninstall)

    def logged(self):
        return '\n'.join(
            record.getMessage() + (
                logging.Formatter().formatException(record.exc_info)
                if record.exc_info else '')
            for record in self.log.records)

    def test_delivery(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(URL)
        self.assertEqual(delivery.queuePath, URL)  # as given, to open it
        self.assertNotIn(PASSWORD, repr(delivery))
        self.assertIn(MASKED, repr(delivery))
        self.addCleanup(lambda: delivery.store.close())
        self.assertIsNone(delivery.maildir)  # no directory

    def test_registration_and_startup(self):
        import zope.event
        import zope.processlifetime

        from zope.sendmail.startup import registered_queues
        from zope.sendmail.startup import registrations
        from zope.sendmail.stores import queue_key
        from zope.sendmail.startup import register_queue
        from zope.sendmail.startup import register_subscribers
        # What the directive's actions do, but for opening the queue.
        self._load('')
        register_queue(URL, 'smtp', interval=1.0)
        register_subscribers()
        [(key, registration)] = registrations().items()
        self.assertEqual(key, queue_key(URL))
        self.assertNotIn(PASSWORD, key)
        self.assertEqual(registration.queuePath, URL)
        self.assertNotIn(PASSWORD, repr(registration))
        self.assertIn(MASKED, repr(registration))
        [name] = registered_queues()
        self.assertNotIn(PASSWORD, name)
        self.assertIn(MASKED, name)
        # The database cannot be reached: the thread does not start, and
        # the error names the queue without its password.
        zope.event.notify(zope.processlifetime.ProcessStarting())
        logged = self.logged()
        self.assertIn(f'the queue processor of {MASKED}', logged)
        self.assertNotIn(PASSWORD, logged)

    def test_a_commit_the_database_refuses(self):
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        delivery = QueuedMailDelivery(URL)
        self.addCleanup(transaction.abort)
        delivery.send('shop@example.com', ['jane@example.org'],
                      b'Subject: x\r\n\r\n')
        self.addCleanup(lambda: delivery.store.close())  # its connections
        with self.assertRaises(Exception) as caught:
            transaction.commit()
        self.assertNotIn(PASSWORD, str(caught.exception))
        self.assertNotIn(PASSWORD, repr(caught.exception))
        self.assertNotIn(PASSWORD, self.logged())
