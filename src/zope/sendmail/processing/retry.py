"""When to try a deferred message again: the `RetryPolicy`.

A message that failed temporarily is deferred in its store until its next
attempt, which the policy computes from the attempts so far; the store
remembers them in the message's `RetryState`
(`zope.sendmail.stores.retrystate`), and gives the message up as rejected
once it has been in the queue longer than the policy's lifetime.
"""
import time


class RetryPolicy:
    """Exponential backoff: *first* seconds after the first failure, then
    *factor* times longer each time, never longer than *cap*; a message
    queued more than *lifetime* seconds ago is given up on its next failure.

    The defaults scale with the processor's polling *interval*: the first
    retry comes after 10 intervals (30 s at the default 3 s) and the
    longest wait is 1200 intervals (one hour).
    """

    def __init__(self, interval=3.0, first=None, factor=2.0, cap=None,
                 lifetime=5 * 24 * 60 * 60):
        self.first = float(first if first is not None else 10 * interval)
        self.factor = float(factor)
        self.cap = float(cap if cap is not None else
                         max(self.first, 1200 * interval))
        self.lifetime = float(lifetime)
        if self.first <= 0 or self.factor < 1 or self.lifetime <= 0:
            raise ValueError(
                'retry settings must be positive, with factor >= 1:'
                f' first={first!r} factor={factor!r} lifetime={lifetime!r}')

    def __repr__(self):
        return (f'<RetryPolicy first={self.first:g}s factor={self.factor:g}'
                f' cap={self.cap:g}s lifetime={self.lifetime:g}s>')

    def delay(self, attempts):
        """Seconds to wait after the *attempts*-th failed attempt."""
        return min(self.cap, self.first * self.factor ** (attempts - 1))

    def expired(self, queued, now=None):
        return (now if now is not None else time.time()) - queued \
            > self.lifetime
