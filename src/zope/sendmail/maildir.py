"""zope.sendmail 7.3's ``maildir`` module: where its users import the
Maildir queue from.  It lives in `zope.sendmail.stores.maildir`.

7.3's other public names are here too: what it imported from
`zope.interface`.  The standard library modules it imported (``os``,
``time``...) are not: replacing them here would change nothing.
"""
from zope.interface import implementer  # noqa: F401
from zope.interface import provider  # noqa: F401

from zope.sendmail.interfaces import IMaildir  # noqa: F401
from zope.sendmail.interfaces import IMaildirFactory  # noqa: F401
from zope.sendmail.interfaces import IMaildirMessageWriter  # noqa: F401
from zope.sendmail.stores.maildir.folder import Maildir  # noqa: F401
from zope.sendmail.stores.maildir.writer import \
    MaildirMessageWriter  # noqa: F401
