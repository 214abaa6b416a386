"""When to try a deferred message again, and what is remembered of it.

A message that failed temporarily waits in the queue's ``cur/``; its file's
mtime is the time of the next attempt, and ``.retry-X`` beside it records
the attempts so far, when the message was queued and the last error, as
``key: value`` lines an operator can read.  The message's own bytes never
change for bookkeeping, so a 7.3 processor would still send it unchanged.
"""
import re
import time


_TIMESTAMP = re.compile(r'(\d{9,11})[.]')


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


class RetryState:
    """What ``.retry-X`` records of a deferred message."""

    def __init__(self, queued, attempts=0, last_attempt=None,
                 next_attempt=None, last_error=''):
        self.queued = queued
        self.attempts = attempts
        self.last_attempt = last_attempt
        self.next_attempt = next_attempt
        self.last_error = last_error

    @classmethod
    def fresh(cls, name, mtime):
        """The state of a message never tried: queued when its name says
        (every Maildir name starts with its creation time), else at
        *mtime*."""
        match = _TIMESTAMP.match(name)
        return cls(float(match.group(1)) if match else mtime)

    @classmethod
    def parse(cls, data, name, mtime):
        """Read ``.retry-X`` contents; what cannot be read is forgotten,
        never fatal (the file is bookkeeping, not mail)."""
        state = cls.fresh(name, mtime)
        for line in data.decode('utf-8', 'replace').splitlines():
            key, sep, value = line.partition(':')
            value = value.strip()
            try:
                if key == 'attempts':
                    state.attempts = int(value)
                elif key == 'queued':
                    state.queued = float(value)
                elif key == 'last-attempt':
                    state.last_attempt = float(value)
                elif key == 'next-attempt':
                    state.next_attempt = float(value)
                elif key == 'last-error':
                    state.last_error = value
            except ValueError:
                continue
        return state

    def failed(self, error, policy, now):
        """Record a failed attempt at *now*; return the next attempt time."""
        self.attempts += 1
        self.last_attempt = now
        self.last_error = ' '.join(str(error).split())
        self.next_attempt = now + policy.delay(self.attempts)
        return self.next_attempt

    def format(self):
        lines = [f'attempts: {self.attempts}', f'queued: {self.queued:.0f}']
        if self.last_attempt is not None:
            lines.append(f'last-attempt: {self.last_attempt:.3f}')
        if self.next_attempt is not None:
            lines.append(f'next-attempt: {self.next_attempt:.3f}')
        if self.last_error:
            lines.append(f'last-error: {self.last_error}')
        return ('\n'.join(lines) + '\n').encode('utf-8')
