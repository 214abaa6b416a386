"""A real PostgreSQL for the tests: `PostgresLayer` and `PostgresTestCase`.

The layer makes one throwaway cluster per test run
(`zope.sendmail.testserver.postgres.PostgresCluster`: a temporary
directory, a unix socket in it, ``fsync=off``) with one database, and
removes it at tearDown.  Where it cannot run (no server programs, no
psycopg, no user to run the server as, ``ZOPE_SENDMAIL_POSTGRES_TESTS=0``,
or the server did not start) ``unavailable`` says why, printed once, and
the tests of `PostgresTestCase` skip themselves with that reason.  Each
test asks for a queue of its own (`PostgresLayer.url` with no name: a
fresh one per call), so no test sees another's messages.
"""
import itertools
import sys
import unittest

from zope.sendmail.testserver.postgres import ClusterError
from zope.sendmail.testserver.postgres import PostgresCluster
from zope.sendmail.testserver.postgres import postgres_unavailable


_queues = itertools.count(1)


class PostgresLayer:
    """zope.testrunner layer running one `PostgresCluster` (``cluster``).
    When it cannot run here, ``unavailable`` says why and ``cluster`` is
    None: tests then skip themselves (`PostgresTestCase` does)."""

    cluster = None
    unavailable = 'the PostgreSQL layer is not set up'

    @classmethod
    def setUp(cls):
        cls.unavailable = postgres_unavailable()
        if cls.unavailable is None:
            try:
                cls.cluster = PostgresCluster().create()
            except (ClusterError, OSError) as e:
                cls.unavailable = f'PostgreSQL cannot run here: {e}'
        if cls.unavailable is not None:
            print(f'\n  PostgreSQL layer: its tests are skipped:'
                  f' {cls.unavailable}', file=sys.stderr)

    @classmethod
    def tearDown(cls):
        cluster, cls.cluster = cls.cluster, None
        cls.unavailable = 'the PostgreSQL layer is torn down'
        if cluster is not None:
            cluster.remove()

    @classmethod
    def testSetUp(cls):
        # A test that stopped the server (and failed before starting it
        # again) must not take the following tests down with it.
        cluster = cls.cluster
        if cluster is not None and not cluster.running:
            cluster.start()

    @classmethod
    def url(cls, queue=None, **params):
        """The URL of a queue of the test database: *queue*, or a fresh
        name at each call."""
        if queue is None:
            queue = f'q{next(_queues)}'
        return cls.cluster.url(queue, **params)

    @classmethod
    def restart(cls, mode='immediate'):
        cls.cluster.restart(mode)

    @classmethod
    def stop(cls, mode='fast'):
        cls.cluster.stop(mode)

    @classmethod
    def start(cls):
        cls.cluster.start()

    @classmethod
    def psql(cls, sql, params=None):
        """Run *sql* in the test database; the rows it returns, or None."""
        return cls.cluster.execute(sql, params)


class PostgresTestCase(unittest.TestCase):
    """A test on the PostgreSQL layer, skipped with the layer's reason
    where it cannot run."""

    layer = PostgresLayer

    def setUp(self):
        super().setUp()
        if self.layer.cluster is None:
            self.skipTest(self.layer.unavailable)
