"""The ``zope-sendmail`` program's output on stderr.

This module owns how the program logs (`configure_logging`: a handler on
the root logger for the duration of a run, writing to whatever
``sys.stderr`` is then, at INFO level for a daemon and WARNING otherwise)
and the progress line it shows on a terminal (`Progress`), which log
records clear before they are written.
"""
import collections
import contextlib
import logging
import sys
import threading
import time

from zope.sendmail.console.cmdline import PROG
from zope.sendmail.interfaces import IMailSentEvent


LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def summary(counts):
    return ', '.join(f'{counts[key]} {key}'
                     for key in ('sent', 'deferred', 'rejected'))


class _Handler(logging.StreamHandler):
    """Logs to the current ``sys.stderr``, clearing a progress line first.
    """

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass  # always the current sys.stderr, as redirected

    def emit(self, record):
        if self.progress is not None:
            self.progress.clear()
        super().emit(record)


@contextlib.contextmanager
def configure_logging(settings, progress):
    """Log to stderr while the program runs: INFO in daemon mode, WARNING
    otherwise, one step more with -v and only errors with -q."""
    if settings.verbosity < 0:
        level = logging.ERROR
    elif settings.mode == 'daemon':
        level = logging.DEBUG if settings.verbosity else logging.INFO
    else:
        level = logging.INFO if settings.verbosity else logging.WARNING
    root = logging.getLogger()
    handler = _Handler(progress)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    previous = root.level
    root.addHandler(handler)
    if previous and level < previous:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class Progress:
    """One line on a terminal, rewritten as messages go out."""

    def __init__(self, stream, every=0.1):
        self.stream = stream
        self.every = every
        self.total = collections.Counter()   # of the finished passes
        self.current = collections.Counter()  # this pass, from its events
        self._lock = threading.Lock()
        self._shown = 0.0

    def wrap(self, notify):
        """*notify* (a processor's), counting each event first."""
        def counting(event):
            with self._lock:
                key = 'sent' if IMailSentEvent.providedBy(event) \
                    else 'rejected'
                self.current[key] += 1
            self.show()
            notify(event)
        return counting

    def passed(self, counts):
        with self._lock:
            self.total.update(counts)
            self.current.clear()
        self.show(force=True)

    def show(self, force=False):
        with self._lock:
            now = time.monotonic()
            if not force and now - self._shown < self.every:
                return
            self._shown = now
            counts = self.total + self.current
            self.stream.write(f'\r{PROG}: {summary(counts)}\x1b[K')
            self.stream.flush()

    def clear(self):
        with self._lock:
            if self._shown:
                self.stream.write('\r\x1b[K')
                self._shown = 0.0

    def done(self):
        self.show(force=True)
        self.stream.write('\n')
        self.stream.flush()
