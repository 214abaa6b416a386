"""The Maildir store passes the store contract, on real directories; and
what is its own: odd entries, folder objects of 7.3's kind."""
import os
import shutil
import tempfile
import unittest

from zope.sendmail.stores.tests.contract import QueueStoreContract


class MaildirStoreContractTests(QueueStoreContract, unittest.TestCase):

    def make_store(self):
        from zope.sendmail.stores import open_store
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-store-')
        self.addCleanup(shutil.rmtree, tmp, True)
        self.child_queue = os.path.join(tmp, 'queue')
        return open_store(self.child_queue)

    def reopen(self, store):
        from zope.sendmail.stores import open_store
        return open_store(store.path)
