"""``python -m zope.sendmail.console``: the ``zope-sendmail`` program."""
import sys

from zope.sendmail.console.program import run


sys.exit(run())
