"""Small helpers shared by this package's tests."""
import socket


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
