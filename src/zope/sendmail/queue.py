"""The queue processor and the ``zope-sendmail`` program.

Not yet written: the processing pass, its thread and the console program
come next (see the project's issues).  The console entry point exists so
that installing the package gives a working ``zope-sendmail`` command that
says so.
"""
import sys


def run(argv=None):
    """Entry point of the ``zope-sendmail`` console script (a stub)."""
    print('zope-sendmail: the queue processor is not implemented in this'
          ' development version yet', file=sys.stderr)
    sys.exit(2)
