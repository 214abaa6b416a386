"""postgresql.txt, the narrative of a queue on PostgreSQL, run as a test
against the PostgreSQL layer's server (skipped, with the layer's reason,
where it cannot run) and an SMTP test server of its own."""
import contextlib
import doctest
import io
import os
import re
import shutil
import tempfile
import unittest

import transaction

from zope.sendmail.tests.support import wait_until
from zope.sendmail.tests.support.postgres import PostgresLayer


FLAGS = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
         | doctest.REPORT_NDIFF)
#: The database the document's queue lives in, made afresh for it.
DATABASE = 'shop'


def zope_sendmail(*args):
    """Run the console program in-process; print what it wrote to stderr
    (the log lines without their timestamps) and its exit status."""
    from zope.sendmail.console.program import ConsoleApp
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            status = ConsoleApp(['zope-sendmail', *args]).main()
        except SystemExit as e:
            status = e.code
    print(re.sub(r'(?m)^[-0-9]+ [0-9:,]+ ', '', stderr.getvalue()), end='')
    print('exit status', status)


def setUp(test):
    cluster = PostgresLayer.cluster
    if cluster is None:
        raise unittest.SkipTest(PostgresLayer.unavailable)
    from zope.sendmail.testserver import SMTPTestServer
    transaction.abort()
    cluster.execute(f'DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)',
                    dbname='postgres')
    cluster.execute(f'CREATE DATABASE {DATABASE}', dbname='postgres')
    server = SMTPTestServer().start()
    test.globs.update(
        os=os, tmp=tempfile.mkdtemp(), cluster=cluster, server=server,
        zope_sendmail=zope_sendmail, wait_until=wait_until,
        # The document points libpq at a service file of its own.
        _environ=os.environ.get('PGSERVICEFILE'))


def tearDown(test):
    from zope.sendmail.events import dispatcher
    from zope.sendmail.smtp.connectioncache import clear_all
    globs = test.globs
    transaction.abort()
    thread = globs.get('thread')
    if thread is not None:
        thread.stop(10)  # a failed example may have left it running
    delivery = globs.get('delivery')
    if delivery is not None:
        delivery.store.close(10)  # its connections
    dispatcher.stop()
    clear_all()
    globs['server'].stop()
    if globs['_environ'] is None:
        os.environ.pop('PGSERVICEFILE', None)
    else:
        os.environ['PGSERVICEFILE'] = globs['_environ']
    cluster = globs['cluster']
    if not cluster.running:
        cluster.start()
    cluster.execute(f'DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)',
                    dbname='postgres')
    shutil.rmtree(globs['tmp'])


def test_suite():
    suite = doctest.DocFileSuite(
        'postgresql.txt', package='zope.sendmail', setUp=setUp,
        tearDown=tearDown, optionflags=FLAGS)
    suite.layer = PostgresLayer
    return suite
