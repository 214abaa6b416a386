"""Tests of the vocabulary of mail delivery names."""
import unittest


class MailDeliveryNamesTests(unittest.TestCase):

    def setUp(self):
        import zope.event
        from zope.testing.cleanup import cleanUp
        # Loading configure.zcml may install zope.component's bridge into
        # zope.event.subscribers: put the list back as found.
        self.subscribers = zope.event.subscribers[:]
        cleanUp()

    def tearDown(self):
        import zope.event
        from zope.testing.cleanup import cleanUp
        zope.event.subscribers[:] = self.subscribers
        cleanUp()

    def _callFUT(self, context=None):
        from zope.sendmail.vocabulary import MailDeliveryNames
        return MailDeliveryNames(context)

    def _provide(self, *names, provides=None):
        from zope.component import provideUtility
        from zope.interface import implementer

        from zope.sendmail.interfaces import IMailDelivery

        @implementer(provides or IMailDelivery)
        class Dummy:
            def send(self, fromaddr, toaddrs, message):
                raise NotImplementedError

        for name in names:
            provideUtility(Dummy(), provides or IMailDelivery, name)

    def test_is_a_vocabulary_factory(self):
        from zope.interface.verify import verifyObject
        from zope.schema.interfaces import IVocabularyFactory
        from zope.schema.interfaces import IVocabularyTokenized

        from zope.sendmail.vocabulary import MailDeliveryNames
        verifyObject(IVocabularyFactory, MailDeliveryNames)
        verifyObject(IVocabularyTokenized, self._callFUT())

    def test_empty(self):
        self.assertEqual(list(self._callFUT()), [])

    def test_sorted_names_of_deliveries_only(self):
        from zope.component import provideUtility

        from zope.sendmail.interfaces import IMailer
        from zope.sendmail.smtp.mailer import SMTPMailer
        self._provide('queued', 'Mail', 'direct')
        provideUtility(SMTPMailer(), IMailer, 'not-a-delivery')
        vocabulary = self._callFUT()
        self.assertEqual([term.value for term in vocabulary],
                         ['Mail', 'direct', 'queued'])
        self.assertIn('direct', vocabulary)
        self.assertEqual(vocabulary.getTermByToken('queued').value, 'queued')

    def test_finds_deliveries_registered_for_subinterfaces(self):
        from zope.sendmail.interfaces import IQueuedMailDelivery
        self._provide('Mail')
        self._provide('other', provides=IQueuedMailDelivery)
        self.assertEqual([term.value for term in self._callFUT()],
                         ['Mail', 'other'])

    def test_registered_by_configure_zcml(self):
        import zope.configuration.xmlconfig
        from zope.component import getUtility
        from zope.schema.interfaces import IVocabularyFactory

        import zope.sendmail
        from zope.sendmail.vocabulary import MailDeliveryNames
        zope.configuration.xmlconfig.file('configure.zcml', zope.sendmail)
        factory = getUtility(IVocabularyFactory, 'Mail Delivery Names')
        self.assertIs(factory, MailDeliveryNames)
