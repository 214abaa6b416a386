"""What this package's tests share; no test module imports another.

Here, the small helpers any test may use: a child process's environment,
a bounded wait, a closed port, a data manager refusing its vote.  Beside
them, a module per kind of test, each with its base class and constants:
`zcml`, `processor` (one queue processor), `console` (the program
in-process), `processes` (processors in child processes), `mailer`,
`server` (the SMTP test server over smtplib), `utf8auth` and `xoauth2`
(layers asking for credentials), `postfix`, `compat73` (7.3's clients),
`lease` (another host's lease), `hostile` (hostile queue files) and
`addresses`.  None of them holds tests (test_testlayout checks both).
"""
import os
import socket
import sys
import time

import zope.sendmail


# The directory holding the ``zope`` package this process imports.
SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(zope.sendmail.__file__))))


def child_env():
    """The environment of a child process: this package's ``src`` first,
    then this process's ``sys.path``, so that the child imports what we do."""
    path = [SRC] + [p for p in sys.path if p and p != SRC]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(path)
    return env


def wait_until(condition, timeout=5.0, interval=0.01):
    """Poll *condition* until it is true or *timeout* seconds passed;
    return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class RefusingDataManager:
    """Another participant of a transaction, which refuses its vote.

    Its sort key puts it after the mail's data managers, so they have
    voted when it refuses.
    """

    transaction_manager = None

    def sortKey(self):
        return '~~~~'

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_finish = tpc_abort = abort

    def tpc_vote(self, txn):
        raise RuntimeError('this data manager refuses to commit')
