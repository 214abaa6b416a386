"""zope.sendmail 7.3's ``mailer`` module: where its users import the SMTP
mailer from.  It lives in `zope.sendmail.smtp.mailer`."""
from zope.sendmail.interfaces import ISMTPMailer  # noqa: F401
from zope.sendmail.smtp.mailer import SMTPMailer  # noqa: F401
