"""Tests of the ZCML directives: permissions, and configure.zcml."""
from zope.configuration.exceptions import ConfigurationError

from zope.sendmail.tests.support.zcml import ZCMLTestBase


class PermissionTests(ZCMLTestBase):

    def _proxied_send(self, principal_id, granted):
        from zope.security import management
        from zope.security.checker import ProxyFactory
        proxied = ProxyFactory(self._delivery())
        old = management.setSecurityPolicy(_policy(granted))
        management.newInteraction(_Participation(principal_id))
        try:
            return proxied.send('a@example.com', ['b@example.com'],
                                b'Subject: x\n\n')
        finally:
            management.endInteraction()
            management.setSecurityPolicy(old)

    def test_untrusted_code_needs_the_permission(self):
        from zope.security.interfaces import Unauthorized
        self._load(f'<mail:queuedDelivery mailer="smtp" queuePath='
                   f'"{self.queue}" permission="zope.SendMail" />')
        self.assertTrue(self._proxied_send('alice', {'alice'}))
        with self.assertRaises(Unauthorized):
            self._proxied_send('bob', {'alice'})

    def test_trusted_code_calls_freely(self):
        from zope.security import management

        from zope.sendmail.delivery import DirectMailDelivery
        self._load('<mail:directDelivery mailer="smtp"'
                   ' permission="zope.SendMail" />')
        delivery = self._delivery()
        # Registered as is, not behind a security proxy: even while an
        # unprivileged principal's interaction is on, Python code calls it.
        self.assertIs(type(delivery), DirectMailDelivery)
        old = management.setSecurityPolicy(_policy(set()))
        management.newInteraction(_Participation('bob'))
        try:
            self.assertTrue(delivery.send('a@example.com', ['b@x.org'],
                                          b'Subject: x\n\n'))
        finally:
            management.endInteraction()
            management.setSecurityPolicy(old)

    def test_public(self):
        from zope.security.checker import CheckerPublic
        self._load(f'<mail:queuedDelivery mailer="smtp" queuePath='
                   f'"{self.queue}" permission="zope.Public" />')
        checker = self._delivery().__Security_checker__
        self.assertIs(checker.permission_id('send'), CheckerPublic)
        self.assertTrue(self._proxied_send('bob', set()))

    def test_undefined_permission(self):
        with self.assertRaisesRegex(ConfigurationError,
                                    'Undefined permission ID'):
            self._load('<mail:directDelivery mailer="smtp"'
                       ' permission="zope.Nonsense" />')


class ConfigureZCMLTests(ZCMLTestBase):

    def test_registrations(self):
        from zope.component import getUtility
        from zope.interface.interfaces import IInterface
        from zope.schema.interfaces import IVocabularyFactory
        from zope.security.interfaces import IPermission

        from zope.sendmail.interfaces import IMailDelivery
        from zope.sendmail.vocabulary import MailDeliveryNames
        self._load('')
        self.assertEqual(getUtility(IPermission, 'zope.SendMail').title,
                         'Send Mail')
        mailer = self._mailer('smtp')
        self.assertEqual((mailer.hostname, mailer.port), ('localhost', 25))
        self.assertIs(getUtility(IInterface, IMailDelivery.__identifier__),
                      IMailDelivery)
        self.assertIs(getUtility(IVocabularyFactory, 'Mail Delivery Names'),
                      MailDeliveryNames)

    def test_both_events_start_the_threads(self):
        import zope.event
        import zope.processlifetime

        from zope.sendmail import startup
        self._load(f'<mail:queuedDelivery mailer="smtp"'
                   f' queuePath="{self.queue}" />')
        for event in (zope.processlifetime.DatabaseOpenedWithRoot(None),
                      zope.processlifetime.ProcessStarting()):
            zope.event.notify(event)
            self.assertEqual(list(startup.running_threads()), [self.queue])
            startup.stop_processor_threads()


def _policy(granted):
    from zope.security.simplepolicies import ParanoidSecurityPolicy

    class GrantingPolicy(ParanoidSecurityPolicy):
        """Grants every permission to the principals in *granted*."""

        def checkPermission(self, permission, object):
            return all(p.principal.id in granted for p in self.participations)

    return GrantingPolicy


class _Principal:

    def __init__(self, id):
        self.id = id


class _Participation:

    interaction = None

    def __init__(self, principal_id):
        self.principal = _Principal(principal_id)
