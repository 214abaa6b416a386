"""The PostgreSQL store passes the store contract, on a real server (the
test layer's throwaway cluster)."""
from zope.sendmail.stores.tests.contract import QueueStoreContract
from zope.sendmail.tests.support.postgres import PostgresTestCase


# open_store learns URLs elsewhere: the child opens the store itself.
CLAIM_HOLDER = '''
import sys, time
from zope.sendmail.stores.postgresql import open_postgres_store
store = open_postgres_store(sys.argv[1])
store.acquire()
entries = store.due().entries
held = store.claim(entries[0]) if entries else None
print('claimed' if held is not None else 'busy', flush=True)
time.sleep(120)
'''


class PostgresStoreContractTests(QueueStoreContract, PostgresTestCase):

    claim_holder = CLAIM_HOLDER

    def make_store(self):
        from zope.sendmail.stores.postgresql import open_postgres_store
        self.child_queue = self.layer.url()
        return open_postgres_store(self.child_queue)

    def reopen(self, store):
        from zope.sendmail.stores.postgresql import open_postgres_store
        other = open_postgres_store(self.child_queue)
        self.addCleanup(other.close, 10)
        return other
