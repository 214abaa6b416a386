"""The base of the tests in the NFS layer (two independent NFS clients).

`NFSTestCase` gives its tests the layer's `NFSLab
<zope.sendmail.testserver.nfs.NFSLab>` as ``self.lab``, skips them (saying
why) where the layer cannot run, and helps write the guests' programs:
`NFSTestCase.python` is a shell command line running this process's
interpreter, with this process's import path, inside a guest.
"""
import json
import os
import shlex
import sys
import time
import unittest

from zope.sendmail.testserver.nfs import NFSLayer
from zope.sendmail.tests.support import child_env


class NFSTestCase(unittest.TestCase):

    layer = NFSLayer

    def setUp(self):
        if self.layer.lab is None:
            self.skipTest(f'NFS layer: {self.layer.unavailable}')
        self.lab = self.layer.lab
        self.started = time.monotonic()

    @staticmethod
    def python(*args):
        """A shell command running *args* with our Python in a guest."""
        path = child_env()['PYTHONPATH']
        return ' '.join(['env', shlex.quote(f'PYTHONPATH={path}'),
                         shlex.quote(sys.executable),
                         *map(shlex.quote, map(str, args))])

    def queue_file(self, name):
        """The host's path of *name* in the export (``/run/q`` inside)."""
        return os.path.join(self.lab.queue_root, name)

    def wait_for(self, condition, timeout, what):
        """Poll *condition* (every 0.1 s) until true; fail after
        *timeout* s, saying *what* was awaited and the guests' logs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f'{what}: not within {timeout} s\n'
                          + ''.join(g.logs() for g in self.lab.guests))
            time.sleep(0.1)

    @staticmethod
    def events(guest):
        """The JSON lines a guest's program printed, as dicts."""
        return [json.loads(line) for line in guest.read('output').splitlines()
                if line.startswith('{')]

    def note(self, text):
        """Print an observation (seconds since the test started first)."""
        print(f'\n    [{time.monotonic() - self.started:6.1f} s]'
              f' {self.id().rpartition(".")[2]}: {text}', end='',
              file=sys.stderr)
