"""The contract of the SMTP client under a connection: bounded replies.

`zope.sendmail.smtpclient` implements it (smtplib's classes, bounded);
`SMTPConnection` creates one per connection when the mailer's ``smtp``
factory is smtplib's own, and drives it with smtplib's methods.
`zope.sendmail.interfaces` exports it too.
"""
from zope.interface import Attribute
from zope.interface import Interface


class IBoundedSMTP(Interface):
    """An `smtplib.SMTP` that no relay can make read without end.

    Called by one thread, the connection's; what a relay says is hostile
    until proven otherwise.  Must never: read a reply of more than
    ``max_reply_lines`` lines or ``max_reply_bytes`` bytes, or for longer
    than ``deadline_factor`` times ``timeout``; hold more of a message
    being sent than a slice of it besides the message itself; put a
    character of a password or token into an exception.
    """

    max_reply_lines = Attribute("Lines one reply may have.")
    max_reply_bytes = Attribute("Bytes one reply may have.")
    deadline_factor = Attribute(
        "A reply must be complete within this many times ``timeout``.")
    timeout = Attribute(
        "Seconds one read may wait (smtplib's); no deadline when None.")

    def connect(host, port):
        """Connect to *host*:*port* and read the greeting, as smtplib does:
        ``(code, text)``."""

    def getreply():
        """Read one reply: ``(code, text)``.  Past a bound, close the
        connection and raise `zope.sendmail.smtpclient.ReplyLimitError`
        saying which bound and of which reply (the greeting, or the
        command's name: never an AUTH response)."""

    def data(msg):
        """Say DATA and send *msg* (bytes, or a memoryview of bytes) with
        CRLF line endings and leading dots doubled, made a slice at a
        time; the final reply ``(code, text)``.  A reply to DATA other
        than 354 raises `smtplib.SMTPDataError`, as smtplib does."""

    def login(user, password):
        """Authenticate as smtplib does, with the credentials encoded as
        UTF-8 (RFC 4616).  A refusal raises
        `smtplib.SMTPAuthenticationError` with the relay's reply (any
        response of ours it echoed cut out); credentials that cannot be
        encoded, a `MailerConfigurationError` quoting none of them."""
