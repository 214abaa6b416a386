"""The PostgreSQL store passes the store contract, on a real server (the
test layer's throwaway cluster); its child process opens the queue by URL
through `open_store`."""
from zope.sendmail.stores.tests.contract import QueueStoreContract
from zope.sendmail.tests.support.postgres import PostgresTestCase


class PostgresStoreContractTests(QueueStoreContract, PostgresTestCase):

    def make_store(self):
        from zope.sendmail.stores import open_store
        self.child_queue = self.layer.url()
        return open_store(self.child_queue)

    def reopen(self, store):
        from zope.sendmail.stores import open_store
        other = open_store(self.child_queue)
        self.addCleanup(other.close, 10)
        return other
