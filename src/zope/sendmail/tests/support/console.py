"""The zope-sendmail program run in-process: `ConsoleTestBase` runs it on
a fresh queue with a `RecordingMailer` and a `FakeThread` whose passes
return scripted results (`pass_result`), and captures what it prints."""
import contextlib
import io
import os
import shutil
import tempfile
import unittest
from unittest import mock


PASSWORD = 's3cret-Pa55'


class RecordingMailer:
    """Records the keyword arguments it was built with."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeThread:
    """A processor thread whose passes return the ``script``ed results;
    the program uses only its public methods."""

    def __init__(self, **kwargs):
        self.instances.append(self)
        self.kwargs = kwargs
        self.passes = 0
        self.results = list(self.script)
        self.interrupted = False

    def process_once(self):
        self.passes += 1
        if self.during_pass is not None:
            self.during_pass()
        return self.results.pop(0) if self.results else pass_result()

    def standby_wait(self):
        return False

    def interrupt(self):
        self.interrupted = True

    def stop(self, timeout=None):
        self.stopped = True
        return True

    script = ()
    during_pass = None


def pass_result(error=None, **counts):
    from zope.sendmail.processing.passes import PassResult
    result = PassResult()
    result.counts.update(counts)
    result.error = error
    return result


class ConsoleTestBase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='zope.sendmail-console-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.queue = os.path.join(self.tmp, 'queue')
        for sub in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(self.queue, sub))

    def _app(self, *args, script=(), during_pass=None, stdin='',
             mailer=RecordingMailer):
        from zope.sendmail.console.program import ConsoleApp
        thread = self.thread = type('Thread', (FakeThread,), {
            'script': script, 'instances': [],
            'during_pass': staticmethod(during_pass) if during_pass
            else None})
        cls = type('App', (ConsoleApp,), {'MailerKind': mailer,
                                          'QueueProcessorKind': thread})
        with mock.patch('sys.stdin', io.StringIO(stdin)):
            return cls(['zope-sendmail', *args])

    def _run(self, *args, **kw):
        """Run the program; return (status, stdout + stderr, app)."""
        out = io.StringIO()
        app = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                app = self._app(*args, **kw)
            except SystemExit as e:
                # A bad command line or --help: refused by the constructor.
                status = e.code
            else:
                status = app.main()
        return status, out.getvalue(), app

    def _ini(self, text, name='zs.ini'):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write('[app:zope-sendmail]\n' + text)
        return path

    def _error(self, *args, **kw):
        status, output, app = self._run(*args, **kw)
        self.assertEqual(status, 2, output)
        self.assertTrue(output.startswith('zope-sendmail: error: '), output)
        self.assertEqual(output.count('\n'), 1, output)
        return output[len('zope-sendmail: error: '):].strip()
