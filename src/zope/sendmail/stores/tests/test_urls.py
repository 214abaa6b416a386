"""A queue named by a PostgreSQL URL, as `zope.sendmail.stores` chooses
it: recognised wherever a path is taken, never made a directory, named
without its password, and refused with a clear error when psycopg is
missing (a process of its own, whose imports cannot find psycopg)."""
import os
import subprocess
import sys
import tempfile
import unittest


PASSWORD = 'pW-53cr3t'
URL = f'postgresql://mailer:{PASSWORD}@db.example.com:5433/site?queue=a'


class ChooserTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='zope.sendmail-url-')
        self.addCleanup(self.tmp.cleanup)
        here = os.getcwd()
        os.chdir(self.tmp.name)  # where a URL made a path would land
        self.addCleanup(os.chdir, here)

    def test_is_url(self):
        from zope.sendmail.stores import is_url
        for queue in (URL, 'postgres:///db', 'postgresql://?service=m',
                      'POSTGRESQL://h/db'):
            self.assertTrue(is_url(queue), queue)
        for queue in ('var/queue', '/var/postgresql://x', b'postgresql://h',
                      'postgresql', 'mysql://h/db', None):
            self.assertFalse(is_url(queue), queue)

    def test_key_and_name_never_hold_the_password(self):
        from zope.sendmail.stores import queue_key
        from zope.sendmail.stores import queue_name
        self.assertEqual(queue_name(URL),
                         'postgresql://mailer:***@db.example.com:5433/site'
                         '?queue=a')
        self.assertNotIn(PASSWORD, queue_key(URL))
        self.assertIn('queue=a', queue_key(URL))
        # However the URL spells it, a queue is one key; two queues of one
        # database are two.
        self.assertEqual(
            queue_key('postgresql://mailer@DB.example.com:5433/site'
                      '?queue=a'), queue_key(URL))
        self.assertNotEqual(queue_key(URL.replace('queue=a', 'queue=b')),
                            queue_key(URL))
        self.assertEqual(queue_key('postgresql:///db?queue=default'),
                         queue_key('postgresql:///db'))
        self.assertEqual(queue_name('var/queue'), 'var/queue')

    def test_a_password_parameter_is_masked_too(self):
        from zope.sendmail.stores import queue_key
        from zope.sendmail.stores import queue_name
        url = f'postgresql://?service=mail&password={PASSWORD}'
        self.assertNotIn(PASSWORD, queue_name(url))
        self.assertNotIn(PASSWORD, queue_key(url))
        self.assertIn('password=***', queue_name(url))

    def test_a_url_naming_no_queue_is_refused_without_its_password(self):
        from zope.sendmail.interfaces import QueueError
        from zope.sendmail.stores import open_store
        from zope.sendmail.stores import queue_key
        from zope.sendmail.stores import queue_name
        for bad in (URL + '&queue=', URL.replace('queue=a', 'queue=%0a'),
                    URL + '#fragment'):
            with self.assertRaises(QueueError) as caught:
                open_store(bad)
            self.assertNotIn(PASSWORD, str(caught.exception))
            with self.assertRaises(QueueError):
                queue_key(bad)
            self.assertNotIn(PASSWORD, queue_name(bad))
        self.assertEqual(os.listdir('.'), [])

    def test_a_url_never_becomes_a_directory(self):
        from zope.sendmail.interfaces import QueueError
        from zope.sendmail.stores import open_store
        for create, must_exist in ((True, False), (True, True),
                                   (False, True)):
            try:
                open_store('postgresql:///nowhere?host=/nonexistent',
                           create=create, must_exist=must_exist).close()
            except QueueError:
                pass  # psycopg missing, or no server: either way, said
        self.assertEqual(os.listdir('.'), [])

    def test_check_options_still_checks(self):
        from zope.sendmail.stores import check_options
        with self.assertRaises(ValueError):
            check_options(lease='sometimes')
        check_options(lease='auto', lease_timeout=120.0)

    def test_check_options_by_the_rules_of_the_queues_store(self):
        # A short lease is a PostgreSQL queue's own matter: the Maildir
        # processor lease's margin (20 s by default) does not bound it.
        from zope.sendmail.options import processor_arguments
        from zope.sendmail.processing.thread import QueueProcessorThread
        from zope.sendmail.stores import check_options
        short = {'lease_timeout': 5.0, 'lease_renew': 1.0}
        with self.assertRaisesRegex(ValueError, 'lease_margin'):
            check_options(lease_margin=20.0, **short)
        with self.assertRaisesRegex(ValueError, 'lease_margin'):
            processor_arguments(short, 'queue')
        url = 'postgresql:///nowhere?host=/nonexistent'
        check_options(url, lease_margin=20.0, **short)
        self.assertEqual(processor_arguments(short, url)['lease_timeout'], 5.0)
        with self.assertRaisesRegex(ValueError, 'lease_renew'):
            check_options(url, lease_timeout=5.0, lease_renew=10.0)
        arguments = processor_arguments(short, url)
        del arguments['shared_group']
        thread = QueueProcessorThread(queuePath=url, **arguments)
        self.assertEqual(thread.store_options['lease_timeout'], 5.0)

    def test_create_schema_of_a_directory_is_refused(self):
        from zope.sendmail.interfaces import QueueError
        from zope.sendmail.stores import create_schema
        with self.assertRaisesRegex(QueueError, 'no PostgreSQL URL'):
            create_schema('queue')
        self.assertEqual(os.listdir('.'), [])


# A process whose imports cannot find psycopg (an entry of None in
# sys.modules makes any import of it raise ImportError).
WITHOUT_PSYCOPG = '''
import sys
for name in ("psycopg", "psycopg_binary", "psycopg_c"):
    sys.modules[name] = None
import tempfile, os
import zope.sendmail.delivery, zope.sendmail.zcml, zope.sendmail.queue
import zope.sendmail.console.program
from zope.sendmail.stores import open_store, queue_key, create_schema
from zope.sendmail.stores.postgresql.url import QueueURL
from zope.sendmail.interfaces import QueueError
# A Maildir queue needs nothing more.
store = open_store(os.path.join(tempfile.mkdtemp(), "q"))
print("maildir", type(store).__name__)
print("key", queue_key(os.environ["QUEUE_URL"]))
print("url", QueueURL(os.environ["QUEUE_URL"]).masked)
for call in (open_store, create_schema):
    try:
        call(os.environ["QUEUE_URL"])
    except QueueError as e:
        print("error", e)
'''


class WithoutPsycopgTests(unittest.TestCase):

    def _run(self, code, **environ):
        """The output of *code* run by a Python of its own; *environ* adds
        to its environment (a password never goes on a command line)."""
        from zope.sendmail.tests.support import child_env
        done = subprocess.run(
            [sys.executable, '-c', code], capture_output=True, text=True,
            timeout=60, env=dict(child_env(), **environ))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn(PASSWORD, done.stderr)
        return done.stdout

    def test_a_url_says_which_extra_is_missing(self):
        out = self._run(WITHOUT_PSYCOPG, QUEUE_URL=URL)
        self.assertIn('maildir MaildirStore', out)
        errors = [line for line in out.splitlines()
                  if line.startswith('error ')]
        self.assertEqual(len(errors), 2, out)
        for line in errors:
            self.assertIn("a PostgreSQL queue needs psycopg: pip install"
                          " 'zope.sendmail[postgresql]'", line)
        self.assertNotIn(PASSWORD, out)

    def test_importing_the_package_imports_no_psycopg(self):
        out = self._run(
            'import sys\n'
            'import zope.sendmail.delivery, zope.sendmail.zcml\n'
            'import zope.sendmail.console.program, zope.sendmail.startup\n'
            'import zope.sendmail.stores.postgresql.url\n'
            'from zope.sendmail.stores import queue_key\n'
            'queue_key("postgresql:///db?queue=x")\n'
            'print(sorted(m for m in sys.modules if "psycopg" in m))\n')
        self.assertEqual(out.strip(), '[]')

    def test_the_program_says_which_extra_is_missing(self):
        out = self._run(
            'import sys, os\n'
            'sys.modules["psycopg"] = None\n'
            'from zope.sendmail.console.program import ConsoleApp\n'
            'sys.stderr = sys.stdout\n'
            'print("status", ConsoleApp(["zope-sendmail", "--status",'
            ' os.environ["QUEUE_URL"]], verbose=False).main())\n',
            QUEUE_URL=URL.replace(f':{PASSWORD}', ''))
        self.assertIn("zope-sendmail: error: postgresql://mailer@"
                      "db.example.com:5433/site?queue=a: a PostgreSQL queue"
                      " needs psycopg: pip install"
                      " 'zope.sendmail[postgresql]'", out)
        self.assertIn('status 2', out)
