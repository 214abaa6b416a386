"""The PostgreSQL store: a mail queue in a PostgreSQL table, behind
`IQueueStore`.

A queue is named by a ``postgresql:`` URL (`url`); `open_postgres_store`
opens it and `create_schema` creates the tables (`sql`) in a database.
The store (`store`) keeps a delivery's messages in memory until the vote
(`vote`), which inserts them in one statement; processors claim messages
with row locks and leases (`claimed`, `lease`), are woken by LISTEN/NOTIFY
(`listener`), and all work at once.  The package is imported only when a
URL is opened: psycopg 3 comes with the ``postgresql`` extra, and opening
a URL without it is a `QueueError` naming the extra.
"""
from zope.sendmail.stores.postgresql.store import PostgresStore
from zope.sendmail.stores.postgresql.store import create_schema
from zope.sendmail.stores.postgresql.store import open_postgres_store
from zope.sendmail.stores.postgresql.url import QueueURL
from zope.sendmail.stores.postgresql.url import is_queue_url


__all__ = [
    'PostgresStore',
    'QueueURL',
    'create_schema',
    'is_queue_url',
    'open_postgres_store',
]
