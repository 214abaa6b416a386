"""zope.sendmail 7.3's ``queue`` module: where its users import the queue
processor thread and the ``zope-sendmail`` program from (its console
script is ``zope.sendmail.queue:run``).  They live in
`zope.sendmail.processing.thread` and `zope.sendmail.console.program`.

7.3's other public names are here too, as aliases (what they name lives
elsewhere, and replacing them here changes nothing there): the INI
readers `boolean` and `string_or_none` (`zope.sendmail.console.ini73`),
`MAX_SEND_TIME` (how long a 7.3 processor's claim is respected) and the
functions and classes 7.3 imported from the standard library.  The
standard library modules it imported (``os``, ``time``...) are not: import
them from the standard library.
"""
from email.utils import formataddr  # noqa: F401
from email.utils import getaddresses  # noqa: F401
from pathlib import Path  # noqa: F401

from zope.sendmail.console.ini73 import boolean  # noqa: F401
from zope.sendmail.console.ini73 import string_or_none  # noqa: F401
from zope.sendmail.console.program import ConsoleApp  # noqa: F401
from zope.sendmail.console.program import run  # noqa: F401
from zope.sendmail.processing.thread import QueueProcessorThread  # noqa
from zope.sendmail.smtp.mailer import SMTPMailer  # noqa: F401
from zope.sendmail.stores.maildir.folder import Maildir  # noqa: F401
from zope.sendmail.stores.maildir.names import \
    MAX_73_SEND_TIME as MAX_SEND_TIME  # noqa: F401
