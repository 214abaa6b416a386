"""``zope-sendmail --version`` and `zope.sendmail.version`."""
import importlib.metadata
import subprocess
import sys
import unittest

from zope.sendmail.tests.support import child_env
from zope.sendmail.version import version


class TestVersion(unittest.TestCase):

    def test_the_installed_distributions_version(self):
        self.assertEqual(version(), importlib.metadata.version(
            'zope.sendmail'))

    def test_the_program_prints_it(self):
        # The program as a process, as its console script runs it.
        proc = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console', '--version'],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr),
                         (0, f'zope-sendmail {version()}\n', ''))
