"""The ``zope-sendmail`` console program (not written yet).

This development version has only the entry points, so that the installed
``zope-sendmail`` command says so instead of failing obscurely.
"""
import sys


class ConsoleApp:
    """The ``zope-sendmail`` program; see `run`."""

    def __init__(self, argv=None, verbose=True):
        self.argv = list(sys.argv if argv is None else argv)
        self.verbose = verbose

    def main(self):
        print('zope-sendmail: the console program is not implemented in'
              ' this development version yet', file=sys.stderr)
        return 2


def run(argv=None):
    """Entry point of the ``zope-sendmail`` console script."""
    sys.exit(ConsoleApp(argv).main())
