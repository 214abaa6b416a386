"""The ``testing`` extra: without it, importing the test helpers fails
with an error naming the extra (checked in child processes where the
extra's modules cannot be imported), and other import errors are left
alone."""
import subprocess
import sys
import unittest

from zope.sendmail import testingextra
from zope.sendmail.tests.support import child_env


# In the child, None in sys.modules makes importing that module fail as if
# it were not installed.
CHILD = """\
import sys
sys.modules[sys.argv[1]] = None
import importlib
importlib.import_module(sys.argv[2])
"""


def import_without(dist, module):
    """Import *module* in a child process where *dist* is missing; return
    the child's exit status and the last line of its stderr."""
    proc = subprocess.run(
        [sys.executable, '-c', CHILD, dist, module], env=child_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=60)
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, lines[-1] if lines else ''


class TestMissingExtra(unittest.TestCase):

    def test_each_helper_names_the_extra(self):
        for dist, module in [('zope.testing', 'zope.sendmail.testing'),
                             ('aiosmtpd', 'zope.sendmail.testserver'),
                             ('cryptography', 'zope.sendmail.testserver')]:
            with self.subTest(dist=dist):
                status, last = import_without(dist, module)
                self.assertEqual(status, 1)
                self.assertEqual(
                    last,
                    f"zope.sendmail.testingextra.MissingExtraError: {module}"
                    f" needs {dist}, which is not installed: install the"
                    f" 'testing' extra (pip install"
                    f" 'zope.sendmail[testing]')")

    def test_the_package_imports_without_the_extra(self):
        child = ('import sys\n'
                 'for name in sys.argv[1:]: sys.modules[name] = None\n'
                 'import zope.configuration.xmlconfig, zope.sendmail\n'
                 'import zope.sendmail.delivery, zope.sendmail.queue\n'
                 'zope.configuration.xmlconfig.file('
                 '"configure.zcml", zope.sendmail)\n'
                 'print("ok")\n')
        proc = subprocess.run(
            [sys.executable, '-c', child] + list(testingextra.DISTRIBUTIONS),
            env=child_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr),
                         (0, 'ok\n', ''))

    def test_a_submodule_counts(self):
        error = ModuleNotFoundError('no', name='cryptography.x509')
        with self.assertRaises(testingextra.MissingExtraError) as caught:
            testingextra.missing('helper', error)
        self.assertEqual(caught.exception.name, 'cryptography.x509')
        self.assertIs(caught.exception.__cause__, error)
        self.assertIsInstance(caught.exception, ImportError)

    def test_other_import_errors_are_not_disguised(self):
        for error in [ModuleNotFoundError('no', name='zope.testingx'),
                      ImportError('cannot import name x'),
                      ModuleNotFoundError('no', name='zope.sendmail.x')]:
            with self.subTest(error=error):
                self.assertIsNone(testingextra.missing('helper', error))
