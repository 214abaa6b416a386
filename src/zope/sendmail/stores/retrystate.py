"""What a store remembers of a message's attempts: `RetryState`.

Every store keeps the same record beside a deferred message (the Maildir
store in ``.retry-X``, as `zope.sendmail.stores.maildir.sidefiles` writes
it), and gives it back with the message's next claim; the processor records
a failed attempt in it (`RetryState.failed`) by its retry policy.
"""
from zope.interface import implementer

from zope.sendmail.interfaces import IRetryState


@implementer(IRetryState)
class RetryState:
    """The attempts of one message; see `IRetryState`.  Times are on the
    store's clock."""

    def __init__(self, queued, attempts=0, last_attempt=None,
                 next_attempt=None, last_error=''):
        self.queued = queued
        self.attempts = attempts
        self.last_attempt = last_attempt
        self.next_attempt = next_attempt
        self.last_error = last_error

    def __repr__(self):
        return (f'<RetryState {self.attempts} attempt(s), queued'
                f' {self.queued:.0f}, next {self.next_attempt}>')

    def failed(self, error, policy, now):
        """Record an attempt that failed at *now* with *error*; return the
        time of the next one, *policy* (a `RetryPolicy`) says when."""
        self.attempts += 1
        self.last_attempt = now
        # One line: it is shown in listings and kept in a key: value file.
        self.last_error = ' '.join(str(error).split())
        self.next_attempt = now + policy.delay(self.attempts)
        return self.next_attempt
