"""The narrative documentation, run as tests."""
import doctest
import os
import shutil
import tempfile
import time
import unittest

import transaction
from zope.testing.loggingsupport import InstalledHandler

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support import RefusingDataManager
from zope.sendmail.tests.support import closed_port


FLAGS = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
         | doctest.REPORT_NDIFF)


class Journal:
    """A tiny transactional store: what is written is kept in ``entries``
    only when the transaction commits."""

    def __init__(self):
        self.entries = []

    def write(self, text):
        txn = transaction.get()
        try:
            pending = txn.data(self)
        except KeyError:
            pending = []
            txn.set_data(self, pending)
            txn.join(_JournalDataManager(self, pending))
        pending.append(text)


class _JournalDataManager:

    def __init__(self, journal, pending):
        self.journal, self.pending = journal, pending
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return 'journal'

    def tpc_finish(self, txn):
        self.journal.entries.extend(self.pending)

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_abort = abort


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

    def queued():
        print(f"new: {len(messages('new'))} messages,"
              f" cur: {len(messages('cur'))} messages")

    def messages(sub):
        path = os.path.join(queue_path, sub)
        return [n for n in os.listdir(path) if not n.startswith('.')]

    def show_dir(sub):
        for name in sorted(os.listdir(os.path.join(queue_path, sub))):
            print(name)

    def print_file(sub, prefix):
        directory = os.path.join(queue_path, sub)
        [name] = [n for n in os.listdir(directory) if n.startswith(prefix)]
        with open(os.path.join(directory, name)) as f:
            print(f.read(), end='')

    def clear_dir(sub):
        directory = os.path.join(queue_path, sub)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))

    def wait_for_pass(processor, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            result = processor.process_once()
            if result.counts or time.monotonic() > deadline:
                return result
            time.sleep(0.05)

    def flush_events():
        from zope.sendmail.events import dispatcher
        assert dispatcher.flush(10), 'events not delivered in 10 s'

    test.globs.update(
        queued=queued, show_dir=show_dir, print_file=print_file,
        clear_dir=clear_dir, wait_for_pass=wait_for_pass,
        flush_events=flush_events, journal=Journal())
    test.globs.update(
        tmp=tmp, queue_path=queue_path, ls=ls, show_queue=show_queue,
        show_subjects=show_subjects, clear_queue=clear_queue,
        RefusingDataManager=RefusingDataManager,
        InstalledHandler=InstalledHandler, closed_port=closed_port(),
        server=SMTPServerLayer.server)


def tearDown(test):
    from zope.sendmail.smtp.connectioncache import clear_all
    from zope.sendmail.events import dispatcher
    dispatcher.stop()
    clear_all()
    transaction.abort()
    shutil.rmtree(test.globs['tmp'])


def test_suite():
    suite = unittest.TestSuite()
    for name in ('README.txt', 'mailer.txt', 'queue.txt', 'testing.txt',
                 'zcml.txt', 'console.txt', 'oauth2.txt', 'scaling.txt',
                 'relays.txt', 'operating.txt'):
        doc = doctest.DocFileSuite(
            name, package='zope.sendmail', setUp=setUp, tearDown=tearDown,
            optionflags=FLAGS)
        doc.layer = SMTPServerLayer
        suite.addTest(doc)
    return suite
