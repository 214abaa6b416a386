"""zope.sendmail 7.3's ``maildir`` module: where its users import the
Maildir queue from.  It lives in `zope.sendmail.stores.maildir`."""
from zope.sendmail.interfaces import IMaildir  # noqa: F401
from zope.sendmail.interfaces import IMaildirFactory  # noqa: F401
from zope.sendmail.interfaces import IMaildirMessageWriter  # noqa: F401
from zope.sendmail.stores.maildir.folder import Maildir  # noqa: F401
from zope.sendmail.stores.maildir.writer import \
    MaildirMessageWriter  # noqa: F401
