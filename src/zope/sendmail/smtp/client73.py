"""A mailer's own ``smtp`` factory, called and driven as 7.3 did.

7.3's ``SMTPMailer`` made its client with ``smtp(hostname, str(port),
timeout=...)`` and drove it with smtplib's methods, and code and tests set
``smtp`` to a factory of their own: a subclass of smtplib's classes, a
test double with the few methods 7.3 called, a mock.  `SMTPConnection`
calls such a factory as 7.3 did (`client_arguments`); smtplib's own classes,
the default, it replaces by their bounded subclasses and connects in a step
of its own (`zope.sendmail.smtp.connection`).

What the factory returns is driven by how much of smtplib it is
(`as_client`): an `smtplib.SMTP` as smtplib's own classes are (MAIL, RCPT,
DATA, the mailer's TLS context for STARTTLS); anything else through
`SMTPClient73`, as 7.3 drove it (see `ISMTPClient73`): ``sendmail`` with
the arguments as given, ``starttls()`` with none.  The type decides, not
``isinstance``: a mock made with ``spec=smtplib.SMTP`` passes for one but
answers MAIL with a mock.

Whether credentials may be sent is `zope.sendmail.smtp.tlsauth`'s to decide,
from what `encrypted` and the client's ``sock`` tell: a real socket is
believed over what the client claims; a client without one is taken at
its word, as 7.3 took it, and is never known to be on this host.
"""
import smtplib
import socket
import ssl

from zope.interface import implementer

from zope.sendmail.interfaces import ISMTPClient73


def client_arguments(factory, mailer):
    """``(args, kwargs)`` to call the user's *factory* with, as 7.3 did:
    the host name and the port as text, and the timeout unless None.  A
    subclass of `smtplib.SMTP_SSL` also gets the mailer's TLS context
    (7.3 gave none, and smtplib's default verifies no certificate)."""
    kwargs = {}
    if mailer.timeout is not None:
        # None is 7.3's opt-out: smtplib's own default applies.
        kwargs['timeout'] = mailer.timeout
    if isinstance(factory, type) and issubclass(factory, smtplib.SMTP_SSL):
        kwargs['context'] = mailer.tls_context()
    return (mailer.hostname, str(mailer.port)), kwargs


def as_client(made):
    """What the factory *made*, as the connection drives it: an
    `smtplib.SMTP` (its type, not a mock's claim) as it is, anything else
    as an `SMTPClient73`."""
    if issubclass(type(made), smtplib.SMTP):
        return made
    return SMTPClient73(made)


def encrypted(client, claimed):
    """Whether the connection of *client* is encrypted: its socket says
    so where it has a real one; else *claimed* (implicit TLS asked of the
    factory, or a STARTTLS that raised nothing)."""
    sock = getattr(client, 'sock', None)
    if isinstance(sock, socket.socket):
        return isinstance(sock, ssl.SSLSocket)
    return claimed


@implementer(ISMTPClient73)
class SMTPClient73:
    """A client of the user's that is not an `smtplib.SMTP`; see
    `ISMTPClient73`.  Every attribute but those below is the client's own,
    so that what 7.3 called (and XOAUTH2's ``auth``) reaches it as it is.
    """

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def __repr__(self):
        return f'<{type(self).__name__} {self.client!r}>'

    @property
    def sock(self):
        sock = getattr(self.client, 'sock', None)
        # A mock's or a double's "sock" says nothing about the network.
        return sock if isinstance(sock, socket.socket) else None

    def has_extn(self, name):
        has_extn = getattr(self.client, 'has_extn', None)
        # Without has_extn nothing is known to be offered: no STARTTLS,
        # and so no credentials unless no_tls says so.
        return has_extn is not None and bool(has_extn(name))

    def starttls(self, context=None):
        # 7.3 said starttls() with no argument: the client does its own
        # TLS.  It reports failure by raising (smtplib raises for every
        # reply but 220); a reply it returns is looked at all the same.
        reply = self.client.starttls()
        if isinstance(reply, tuple) and len(reply) == 2 and \
                isinstance(reply[0], int):
            return reply
        return 220, b'2.0.0 (the client raised nothing)'
