"""Loading the mail ZCML directives in a test: `ZCMLTestBase` loads a
configuration that includes ``zope.sendmail``, looks up what it
registered, starts the processor threads and cleans all of it up."""
import os
import shutil
import tempfile
import unittest

import transaction


TEMPLATE = '''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mail="http://namespaces.zope.org/mail">
  <include package="zope.sendmail" />
  %s
</configure>'''

# A site that includes only the directives (meta.zcml), as sites that
# configure their mail themselves do: no subscriber of configure.zcml.
META_ONLY = '''\
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mail="http://namespaces.zope.org/mail">
  <include package="zope.component" file="meta.zcml" />
  <include package="zope.sendmail" file="meta.zcml" />
  %s
</configure>'''


class ZCMLTestBase(unittest.TestCase):

    def setUp(self):
        import zope.event
        # zope.component.event installs its bridge from zope.event to the
        # ZCML subscribers once, when first imported; other tests may have
        # removed it since.  tearDown puts the list back as found.
        self.subscribers = zope.event.subscribers[:]
        from zope.component.event import dispatch
        from zope.testing.cleanup import cleanUp
        cleanUp()
        if dispatch not in zope.event.subscribers:
            zope.event.subscribers.append(dispatch)
        transaction.abort()
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')

    def tearDown(self):
        import zope.event
        from zope.testing.cleanup import cleanUp

        from zope.sendmail.events import dispatcher
        zope.event.subscribers[:] = self.subscribers
        transaction.abort()
        cleanUp()   # also stops and forgets the processor threads
        dispatcher.stop()
        shutil.rmtree(self.tmp)

    def _load(self, body):
        from zope.configuration import xmlconfig
        return xmlconfig.string(TEMPLATE % body)

    def _delivery(self, name='Mail'):
        from zope.component import getUtility

        from zope.sendmail.interfaces import IMailDelivery
        return getUtility(IMailDelivery, name)

    def _mailer(self, name):
        from zope.component import getUtility

        from zope.sendmail.interfaces import IMailer
        return getUtility(IMailer, name)

    def _start(self):
        import zope.event
        import zope.processlifetime
        zope.event.notify(zope.processlifetime.ProcessStarting())
        from zope.sendmail.startup import running_threads
        return running_threads()
