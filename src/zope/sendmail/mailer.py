"""zope.sendmail 7.3's ``mailer`` module: where its users import the SMTP
mailer from.  It lives in `zope.sendmail.smtp.mailer`.

7.3's other public names are here too, as aliases: smtplib's ``SMTP`` and
``SMTP_SSL`` (the mailer's default ``smtp`` factories: to substitute your
own, set ``smtp`` on the mailer, a subclass or `SMTPMailer`, as in 7.3;
replacing these aliases changes nothing) and what 7.3 imported from
`ssl`, `threading` and `zope.interface`.  `FailoverMailer`, sending
through the first of several relays that works, is here too (it lives in
`zope.sendmail.smtp.failover`).
"""
from smtplib import SMTP  # noqa: F401
from smtplib import SMTP_SSL  # noqa: F401
from ssl import SSLError  # noqa: F401
from threading import local  # noqa: F401

from zope.interface import implementer  # noqa: F401

from zope.sendmail.interfaces import ISMTPMailer  # noqa: F401
from zope.sendmail.smtp.mailer import SMTPMailer  # noqa: F401

# Not 7.3's: failover between relays (issue 18), where users look for
# mailers.
from zope.sendmail.smtp.failover import FailoverMailer  # noqa: F401
