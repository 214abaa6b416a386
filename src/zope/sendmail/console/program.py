"""The ``zope-sendmail`` program: send a queue's mail, or look after it.

This module owns `ConsoleApp`, which turns the settings read by
`zope.sendmail.console.cmdline` into keyword arguments of the mailer
(`SMTPMailer`) and of the processor (`QueueProcessorThread`), opens the
queue's store (`zope.sendmail.stores.open_store`) and runs one of the
modes: once (passes until nothing due is left, then an exit status saying
how it went, with a progress line on a terminal), daemon (the processor
thread until SIGTERM or SIGINT), an operator's operation of
`zope.sendmail.console.queueops`, or the creation of a PostgreSQL queue's
tables (``--create-schema``), or the check of a monitoring system
(``--check``, `zope.sendmail.monitoring.check`) and the facts for scripts
(``--status --json``); `zope.sendmail.console.output` says how it went.
A sending run may keep metrics (`zope.sendmail.monitoring.metrics`, in a
registry of its own): served over HTTP by a daemon (``--metrics-port``)
or written to a file (``--metrics-file``) at the end of a run, and every
``--interval`` seconds by a daemon.
It uses the thread's public methods only.  The queue is shown by its name
(`zope.sendmail.stores.queue_name`): a URL's password never appears in
what the program prints or logs.
``zope.sendmail.queue.run`` and ``ConsoleApp`` are 7.3's names for these.
"""
import collections
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time

from zope.sendmail.console import queueops
from zope.sendmail.console.inifile import INI_KEYS
from zope.sendmail.console.inifile import INI_SECTION
from zope.sendmail.console.cmdline import PROG
from zope.sendmail.console.cmdline import HelpShown
from zope.sendmail.console.inifile import UsageError
from zope.sendmail.console.cmdline import read_settings
from zope.sendmail.console.output import Progress
from zope.sendmail.console.output import configure_logging
from zope.sendmail.console.output import isatty
from zope.sendmail.console.output import summary
from zope.sendmail.events import dispatch
from zope.sendmail.interfaces import MailerConfigurationError
from zope.sendmail.interfaces import QueueError
from zope.sendmail.monitoring import check
from zope.sendmail.monitoring.facts import StatusTimeout
from zope.sendmail.monitoring.facts import facts
from zope.sendmail.monitoring.facts import read_status
from zope.sendmail.options import mailer_arguments
from zope.sendmail.options import processor_arguments
from zope.sendmail.processing.thread import QueueProcessorThread
from zope.sendmail.smtp.failover import FailoverMailer
from zope.sendmail.smtp.mailer import SMTPMailer
from zope.sendmail.stores import is_url
from zope.sendmail.stores import open_store
from zope.sendmail.stores import queue_name


log = logging.getLogger(__name__)

EX_OK, EX_FAILURE, EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 0, 1, 2, 75, 78
PROCESSING = ('once', 'daemon')

#: What the metrics options say without prometheus_client.
NEEDS_METRICS = ("the metrics need prometheus_client: pip install"
                 " 'zope.sendmail[metrics]'")


class ConsoleApp:
    """The ``zope-sendmail`` program for *argv* (``sys.argv`` by default;
    ``argv[0]`` is the program's name).  `main` runs it and returns the
    exit status.  Without *verbose*, no progress line is shown even on a
    terminal.

    The settings are read here, as 7.3 did, and set its attributes
    (``daemon``, ``interval``, ``hostname``, ``port``, ``username``,
    ``force_tls``, ``no_tls``, ``queue_path``, ``mailer``).  As argparse
    does (and 7.3's did), a bad command line prints one line and raises
    ``SystemExit(2)``, and ``--help`` prints the help and raises
    ``SystemExit(0)``.
    """

    INI_SECTION = INI_SECTION
    INI_NAMES = list(INI_KEYS)
    # Collaborators, replaceable by subclasses and tests.
    MailerKind = SMTPMailer
    QueueProcessorKind = QueueProcessorThread
    clock = staticmethod(time.time)

    def __init__(self, argv=None, verbose=True):
        argv = list(sys.argv if argv is None else argv)
        self.script_name = argv[0] if argv else PROG
        self.verbose = verbose
        self.settings = self.mailer = self.store = None
        self.metrics = None  # a ProcessingMetrics, when asked for
        try:
            self._configure(argv[1:])
        except HelpShown as e:
            raise SystemExit(e.status) from None
        except UsageError as e:
            if '--check' in argv[1:]:
                # A monitoring system reads the first line of stdout and
                # the exit status: UNKNOWN, as the plugin convention says.
                print(check.line(check.UNKNOWN, check.escaped(
                    f'usage: {e}')))
                raise SystemExit(check.UNKNOWN) from None
            raise SystemExit(self._usage(str(e))) from None

    def _configure(self, args):
        settings = self.settings = read_settings(args, queueops.parse_age)
        values = settings.values
        for name in ('interval', 'hostname', 'port', 'username', 'password',
                     'force_tls', 'no_tls'):
            setattr(self, name, values[name])
        self.daemon = settings.mode == 'daemon'
        self.queue_path = settings.queue_path
        self.queue_name = queue_name(settings.queue_path)  # for people
        try:
            self.processor_options = processor_arguments(
                values, settings.queue_path)
            # Keywords only: 7.3 got positional arguments wrong.
            arguments = mailer_arguments(values)
            self.mailer = self.MailerKind(**arguments)
            fallbacks = values.get('fallback_relays')
            if fallbacks:
                # The same settings, credentials included, as the user
                # asked: each relay gets its own mailer and connections.
                self.mailer = FailoverMailer([self.mailer] + [
                    self.MailerKind(**dict(
                        arguments, hostname=host,
                        port=arguments['port'] if port is None else port))
                    for host, port in fallbacks])
        except ValueError as e:
            raise UsageError(str(e)) from None
        wanted = settings.metrics
        if wanted['port'] is not None or wanted['file'] is not None:
            self.metrics = self._make_metrics()

    def _make_metrics(self):
        """A `ProcessingMetrics` in a registry of this run's own (nothing
        of the process's default registry)."""
        try:
            from prometheus_client import CollectorRegistry

            from zope.sendmail.monitoring.metrics import ProcessingMetrics
        except ImportError:
            # The extra is not installed: say which, not a traceback.
            raise UsageError(NEEDS_METRICS) from None
        return ProcessingMetrics(CollectorRegistry())

    def main(self):
        """Run the program; return its exit status (see ``--help``)."""
        settings = self.settings
        progress = None
        if self.verbose and settings.mode == 'once' and isatty(sys.stderr):
            progress = Progress(sys.stderr)
        with configure_logging(settings, progress):
            for warning in settings.warnings:
                log.warning('%s', warning)
            if settings.mode == 'create_schema':
                return self._create_schema()
            if settings.mode == 'check':
                return self._check()
            if settings.mode == 'status' and settings.json:
                return self._status_json()
            try:
                self.store = open_store(
                    settings.queue_path, must_exist=True,
                    create=settings.mode in PROCESSING,
                    shared_group=bool(settings.values.get('shared_group')))
            except QueueError as e:
                return self._usage(self._queue_error(e))
            except OSError as e:
                return self._usage(f'cannot use the queue directory'
                                   f' {self.queue_name!r}: {e.strerror}')
            try:
                return getattr(self, '_' + settings.mode)(progress)
            except QueueError as e:
                # The queue's store says what went wrong (a database that
                # stopped answering): no bug, no traceback.
                log.error('%s', self._queue_error(e))
            except OSError as e:
                log.error('%s: %s', self.queue_name, e)
            except Exception:
                # A bug: the traceback is what its report needs.
                log.exception('%s: unexpected error', self.queue_name)
            finally:
                # Its connections, when the queue is in a database.
                self.store.close()
            return EX_FAILURE

    def _queue_error(self, error):
        # A Maildir's errors name its path; a database's may not say
        # which queue (they never hold its password).
        if is_url(self.queue_path) and self.queue_name not in str(error):
            return f'{self.queue_name}: {error}'
        return str(error)

    def _usage(self, problem):
        print(f'{PROG}: error: {problem}', file=sys.stderr)
        return EX_USAGE

    def _processor(self, progress=None):
        # The progress line counts the events on their way to the
        # dispatcher.
        events = {} if progress is None else {
            'notify': progress.wrap(dispatch)}
        if self.metrics is not None:
            events['observer'] = self.metrics
            self.metrics.watch(self.store)
        return self.QueueProcessorKind(
            mailer=self.mailer, queuePath=self.queue_path,
            **self.processor_options, **events)

    def _once(self, progress):
        thread = self._processor(progress)
        interrupted = []

        def interrupt(signum, frame):
            interrupted.append(signum)
            thread.interrupt()  # the messages being sent finish

        total, error, standby = collections.Counter(), None, False
        with _signals(interrupt):
            while not interrupted:
                result = thread.process_once()
                # A standby waits for a dead holder's lease, never for a
                # live one's.
                if result.standby and not total and thread.standby_wait():
                    continue  # look at the lease again
                standby = result.standby
                total.update(result.counts)
                if progress is not None:
                    progress.passed(result.counts)
                error = result.error
                # Another pass only after progress: more may have been
                # queued meanwhile; deferred ones are not due again yet.
                if error is not None or not (
                        result.counts['sent'] or result.counts['rejected']):
                    break
        thread.stop()  # releases the lease, if held
        if progress is not None:
            progress.done()
        if standby:
            log.warning('queue %s: another processor holds the processor'
                        ' lease; this run stopped sending', self.queue_name)
        deferred = queueops.waiting(self.store)
        log.info('queue %s: %s; %d waiting for a later attempt',
                 self.queue_name, summary(total), deferred)
        self._write_metrics()
        if isinstance(error, MailerConfigurationError):
            return EX_CONFIG
        if total['rejected'] or total['failed']:
            return EX_FAILURE
        if error is not None or interrupted or deferred or standby:
            return EX_TEMPFAIL
        return EX_OK

    def _write_metrics(self):
        """Write the metrics to --metrics-file, if asked; a failure is
        logged (the mail matters more), and the next write tries again."""
        path = self.settings.metrics['file']
        if path is None or self.metrics is None:
            return
        from zope.sendmail.monitoring.exposition import write_textfile
        try:
            write_textfile(path, self.metrics.registry)
        except OSError as e:
            log.error('cannot write the metrics to %s: %s', path,
                      e.strerror or e)

    def _metrics_server(self):
        """The started `MetricsServer` of --metrics-port, or None."""
        wanted = self.settings.metrics
        if wanted['port'] is None or self.metrics is None:
            return None
        from zope.sendmail.monitoring.exposition import DEFAULT_ADDRESS
        from zope.sendmail.monitoring.exposition import MetricsServer
        return MetricsServer(self.metrics.registry, wanted['port'],
                             wanted['address'] or DEFAULT_ADDRESS).start()

    def _daemon(self, progress):
        try:
            server = self._metrics_server()
        except OSError as e:
            # A port in use, an address not of this host: nothing started.
            wanted = self.settings.metrics
            return self._usage(f'cannot serve the metrics on'
                               f' {wanted["address"] or "127.0.0.1"}:'
                               f'{wanted["port"]}: {e.strerror or e}')
        try:
            return self._run_daemon()
        finally:
            self._write_metrics()
            if server is not None and not server.stop(5.0):
                log.warning('the metrics server did not stop within 5 s')

    def _run_daemon(self):
        thread = self._processor()
        stop = threading.Event()
        signals = []
        written = time.monotonic()

        def request_stop(signum, frame):
            if stop.is_set():
                raise KeyboardInterrupt  # a second signal: leave now
            signals.append(signum)
            stop.set()

        with _signals(request_stop):
            thread.start()
            log.info('processing %s through %r every %g s (pid %d)',
                     self.queue_name, self.mailer, thread.interval,
                     os.getpid())
            while not stop.wait(1.0):
                if not thread.is_alive():
                    log.error('the queue processor thread died')
                    return EX_FAILURE
                if time.monotonic() - written >= thread.interval:
                    written = time.monotonic()
                    self._write_metrics()
            try:
                log.info('%s received: finishing the messages being sent',
                         signal.Signals(signals[0]).name)
                thread.stop()
            except KeyboardInterrupt:
                log.warning('interrupted again: leaving without waiting; the'
                            ' next processor takes the claims over')
                return EX_FAILURE
        log.info('stopped')
        return EX_OK

    def _create_schema(self):
        """``--create-schema``: the tables of the PostgreSQL queue, made if
        missing."""
        if not is_url(self.queue_path):
            return self._usage(f'--create-schema is for a PostgreSQL queue'
                               f' (a postgresql:// URL), not the directory'
                               f' {self.queue_name!r}: a Maildir queue is'
                               f' made by its first delivery or processor')
        try:
            created = queueops.create_schema(self.queue_path)
        except QueueError as e:
            return self._usage(self._queue_error(e))
        except Exception:
            # A bug, or the database in a state of its own (the store
            # says what it can; this is the rest): the traceback helps.
            log.exception('%s: cannot create the tables', self.queue_name)
            return EX_FAILURE
        print(f'{self.queue_name}: ' + (
            'created the tables of the mail queue' if created else
            'the tables of the mail queue are there already'))
        return EX_OK

    def _read_status(self):
        """The queue's status, store clock and name, within
        --check-timeout; its store is opened and closed for it, in a
        thread of its own."""
        shared_group = bool(self.settings.values.get('shared_group'))

        def opener(queue, **options):
            return open_store(queue, shared_group=shared_group, **options)
        return read_status(self.queue_path, self.settings.timeout, opener)

    def _check(self):
        """``--check``: one line on stdout; the state is the exit status."""
        thresholds = self.settings.thresholds
        try:
            status, now, name = self._read_status()
        except StatusTimeout as e:
            state, text = check.unreadable(
                self.queue_name, f'the queue did not answer: {e}',
                check.UNKNOWN, **thresholds)
        except QueueError as e:
            state, text = check.unreadable(
                self.queue_name, self._queue_error(e), **thresholds)
        except OSError as e:
            state, text = check.unreadable(
                self.queue_name, f'cannot read the queue:'
                f' {e.strerror or e}', **thresholds)
        except Exception as e:
            # A bug: the monitoring system gets one line, without
            # traceback (its screen shows the first line); -v logs it,
            # with its traceback, on stderr.
            log.info('%s: unexpected error', self.queue_name, exc_info=True)
            state, text = check.unreadable(
                self.queue_name, f'unexpected error: {type(e).__name__}',
                check.UNKNOWN, **thresholds)
        else:
            state, text = check.judge(facts(name, status, now), **thresholds)
        print(text)
        return state

    def _status_json(self):
        """``--status --json``: the facts of `facts` as one JSON object."""
        try:
            status, now, name = self._read_status()
        except StatusTimeout as e:
            log.error('%s: the queue did not answer: %s', self.queue_name, e)
            return EX_TEMPFAIL
        except QueueError as e:
            return self._usage(self._queue_error(e))
        except OSError as e:
            return self._usage(f'cannot use the queue {self.queue_name!r}:'
                               f' {e.strerror or e}')
        print(json.dumps(facts(name, status, now), indent=2,
                         sort_keys=True))
        return EX_OK

    def _status(self, progress):
        queueops.status(self.store, sys.stdout, self.clock())
        return EX_OK

    def _list(self, progress):
        queueops.listing(self.store, sys.stdout, self.clock())
        return EX_OK

    def _requeue_rejected(self, progress):
        queueops.requeue_rejected(self.store, sys.stdout)
        return EX_OK

    def _purge_rejected(self, progress):
        queueops.purge_rejected(self.store, self.settings.purge_age,
                                sys.stdout, self.clock())
        return EX_OK


@contextlib.contextmanager
def _signals(handler):
    """Run *handler* on SIGTERM and SIGINT meanwhile (only the main
    thread can; in another one, as in tests, signals are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(argv=None):
    """Entry point of the ``zope-sendmail`` console script: returns after
    success, as 7.3's did, and exits with the status otherwise."""
    status = ConsoleApp(argv).main()
    if status != EX_OK:
        sys.exit(status)
