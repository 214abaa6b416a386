"""The narrative documentation, run as tests."""
import doctest
import os
import shutil
import socket
import tempfile
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer


FLAGS = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
         | doctest.REPORT_NDIFF)


class RefusingDataManager:
    """Another participant of the transaction, which refuses its vote."""

    transaction_manager = None

    def sortKey(self):
        return '~~~~'

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_finish = tpc_abort = abort

    def tpc_vote(self, txn):
        raise RuntimeError('this data manager refuses to commit')


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def setUp(test):
    transaction.abort()
    tmp = tempfile.mkdtemp()
    queue_path = os.path.join(tmp, 'queue')

    def ls(sub):
        path = os.path.join(queue_path, sub)
        return len(os.listdir(path)) if os.path.isdir(path) else 0

    def files():
        new = os.path.join(queue_path, 'new')
        return [os.path.join(new, n) for n in sorted(os.listdir(new))]

    def show_queue():
        for path in files():
            with open(path, 'rb') as f:
                text = f.read().decode('utf-8')
            print(text.replace('\r\n', '\\r\n'), end='')

    def show_subjects():
        for path in files():
            with open(path, 'rb') as f:
                for line in f:
                    if line.startswith(b'Subject: '):
                        print(line[9:].decode().strip())

    def clear_queue():
        paths = files()
        for path in paths:
            os.unlink(path)
        return len(paths) or None

    test.globs.update(
        tmp=tmp, queue_path=queue_path, ls=ls, show_queue=show_queue,
        show_subjects=show_subjects, clear_queue=clear_queue,
        RefusingDataManager=RefusingDataManager,
        InstalledHandler=InstalledHandler, closed_port=_closed_port(),
        server=SMTPServerLayer.server)


def tearDown(test):
    from zope.sendmail.events import dispatcher
    dispatcher.stop()
    transaction.abort()
    shutil.rmtree(test.globs['tmp'])


def test_suite():
    suite = unittest.TestSuite()
    for name in ('README.txt', 'mailer.txt'):
        doc = doctest.DocFileSuite(
            name, package='zope.sendmail', setUp=setUp, tearDown=tearDown,
            optionflags=FLAGS)
        doc.layer = SMTPServerLayer
        suite.addTest(doc)
    return suite
