"""zope.sendmail 7.3's ``queue`` module: where its users import the queue
processor thread and the ``zope-sendmail`` program from (its console
script is ``zope.sendmail.queue:run``).  They live in
`zope.sendmail.processing.thread` and `zope.sendmail.console.program`."""
from zope.sendmail.console.program import ConsoleApp  # noqa: F401
from zope.sendmail.console.program import run  # noqa: F401
from zope.sendmail.processing.thread import QueueProcessorThread  # noqa
from zope.sendmail.smtp.mailer import SMTPMailer  # noqa: F401
from zope.sendmail.stores.maildir.folder import Maildir  # noqa: F401
