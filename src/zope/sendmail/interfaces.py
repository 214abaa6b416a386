"""The contracts of zope.sendmail: every interface and exception, no code.

An application calls ``send`` on an `IMailDelivery`; the message leaves only
if the transaction commits.  An `IQueuedMailDelivery` writes it into a
Maildir queue that an `IMailQueueProcessor` relays; an `IDirectMailDelivery`
relays it while the transaction commits.  Both relay through an `IMailer`;
`ISMTPMailer` owns the SMTP conversation.  `IMailSentEvent` and
`IMailErrorEvent` tell what became of each message id.

Failures are classified by exception class, never by reply texts:
`PermanentDeliveryError` (do not retry), `TemporaryDeliveryError` (retry
later), `MailerConfigurationError` (the settings are wrong; no message is).
"""
from zope.i18nmessageid import MessageFactory
from zope.interface import Attribute
from zope.interface import Interface
from zope.schema import Bool
from zope.schema import Float
from zope.schema import Int
from zope.schema import Password
from zope.schema import TextLine

# The storage's contracts (7.3 had them here), the lease's, the startup's
# and the SMTP client's have modules of their own.
from zope.sendmail.maildir_interfaces import IMaildir  # noqa
from zope.sendmail.maildir_interfaces import IMaildirFactory  # noqa
from zope.sendmail.maildir_interfaces import IMaildirMessageWriter  # noqa
from zope.sendmail.maildir_interfaces import INotices  # noqa
from zope.sendmail.maildir_interfaces import UnsafeQueueError  # noqa
from zope.sendmail.lease_interfaces import IProcessorLease  # noqa
from zope.sendmail.startup_interfaces import \
    IQueueProcessorRegistration  # noqa
from zope.sendmail.smtpclient_interfaces import IBoundedSMTP  # noqa


_ = MessageFactory('zope')


class IMailDelivery(Interface):
    """A utility that sends mail as part of the current transaction."""

    def send(fromaddr, toaddrs, message):
        """Send *message* from *fromaddr* to *toaddrs* if the transaction
        commits, and return its message id without angle brackets.

        *fromaddr* is the envelope sender, a string.  *toaddrs* is a
        non-empty sequence of recipient strings (``"a@example.com"`` or
        ``'"Doe, Jane" <jane@example.com>'``).  *message* is the whole
        RFC 5322 message as ``bytes``, as ``str`` (encoded as UTF-8) or as an
        ``email.message.Message``.

        If the message has a ``Message-Id`` header, its value is kept and
        returned; otherwise a unique one is added.  Line endings are
        normalised to CRLF.

        Bad input raises at once, before anything joins the transaction:
        ``TypeError`` for a non-string address or an unsupported message
        type, ``ValueError`` for no recipients, an address breaking a rule
        of `zope.sendmail.addresses` (a control character, a domain that
        is not a host name once mapped, ...), recipients that would not
        read back from a queue file as given, or a ``Message-Id`` that is
        malformed or holds a control character.  Whatever is accepted goes
        to exactly the addresses given, and to no other.

        Must never send anything, nor make anything visible to a queue
        processor, before the transaction commits.
        """


class IDirectMailDelivery(IMailDelivery):
    """Delivers during the commit of the transaction, through a mailer.

    At the vote the mailer connects to the relay: a relay that cannot be
    reached (or refuses the mailer's credentials) makes the vote fail and
    the whole transaction abort before anything is committed.  The
    messages are sent in ``tpc_finish`` over one connection; a failure
    then is logged with the message id and never raised.
    """

    mailer = Attribute("The IMailer used to relay the messages.")


class IQueuedMailDelivery(IMailDelivery):
    """Writes each message into a Maildir queue when the transaction commits.

    The message is written into the queue's ``tmp/`` at ``send()``, made
    durable before the vote succeeds, and moved into ``new/`` in
    ``tpc_finish``, where queue processors find it.
    """

    queuePath = TextLine(
        title=_("Queue path"),
        description=_("Pathname of the Maildir directory of the queue."))


class IMailQueueProcessor(Interface):
    """Relays the messages of a Maildir queue through a mailer."""

    queuePath = TextLine(
        title=_("Queue path"),
        description=_("Pathname of the Maildir directory of the queue."))
    pollingInterval = Int(
        title=_("Polling interval"), default=5000,
        description=_("How often the queue is checked for new messages"
                      " (in milliseconds)"))
    mailer = Attribute("The IMailer used to relay the messages.")


class IMailer(Interface):
    """Relays one message at a time to a mail server; knows nothing of
    queues or transactions.  As in 7.3, ``vote`` and ``abort`` may be None
    (skipped) and ``vote`` may be missing (a DeprecationWarning)."""

    def vote(fromaddr, toaddrs, message):
        """Prepare to send *message*; raise if it cannot be sent.

        Called by a direct delivery's data manager in ``tpc_vote``, before
        ``send``.  May open a connection that the following ``send`` of the
        same thread uses.  Raising here aborts the transaction, so this is
        the place to find out that the relay is unreachable.
        """

    def send(fromaddr, toaddrs, message):
        """Send *message* (bytes) from *fromaddr* to *toaddrs* now.

        Works with or without a prior ``vote`` and with no transaction at
        all.  Raises on failure; callers in ``tpc_finish`` must catch.
        """

    def abort():
        """Give up what ``vote`` prepared: close any connection it opened.

        Must not raise, and must be harmless when nothing was prepared.
        """


class IMailerConnection(Interface):
    """One open conversation with a relay, carrying many messages.

    Obtained from `ISMTPMailer.connect`; used as a context manager so that
    it is always closed.  Not thread-safe: one thread uses one connection.
    """

    max_recipients = Attribute(
        "Recipients the relay takes in one transaction, or None while no"
        " cap is known.  The connection learns it from a ``452 4.5.3 Too"
        " many recipients`` and keeps it for its life; whoever keeps a"
        " relay's memory longer (the queue processor's schedule) may set"
        " it.  A connection that cannot split a message leaves it None.")

    def send(fromaddr, toaddrs, message):
        """Send one message over this connection.

        *message* is bytes, or a memoryview of bytes (the queue processor
        passes a view of the queue file: no copy of a big message).
        Returns a dict: each recipient the relay refused -> ``(code,
        reply)``.  Raises a `MailDeliveryError` when no recipient got it.
        A connection the relay dropped since the last message is reopened
        first; after a failure, the connection can go on.

        A relay capping the recipients of a transaction gets the rest in
        further transactions on this connection, `max_recipients` at a
        time.  Each recipient gets the message once: when a later
        transaction fails after earlier ones went through, the recipients
        left are returned as refused with its reply (a ``451`` saying why
        when there was none), never sent again by the caller's retry.
        """

    def close():
        """Say QUIT and close; never raises, harmless when called twice."""


class ISMTPMailer(IMailer):
    """A mailer that relays over SMTP (or SMTPS).

    The conversation: connect (TLS from the first byte with
    ``implicit_tls``), EHLO (HELO when EHLO is refused), STARTTLS when the
    server offers it unless ``no_tls``, AUTH when a username and password
    (or an OAuth 2.0 token: XOAUTH2) are set, then MAIL, RCPT, DATA.  Every
    blocking step is bounded by ``timeout``, and every reply by a few times
    it.  Certificates and host names are verified unless ``tls_verify`` is
    false.  Credentials never go unencrypted to a relay whose address is
    not a loopback address, unless ``no_tls`` says so.
    """

    hostname = TextLine(
        title=_("Hostname"), default='localhost', required=True,
        description=_("Name of the SMTP relay host."))
    port = Int(
        title=_("Port"), default=25, required=True,
        description=_("Port of the SMTP service."))
    username = TextLine(
        title=_("Username"), required=False,
        description=_("Username for SMTP AUTH; no AUTH when unset."))
    password = Password(
        title=_("Password"), required=False,
        description=_("Password for SMTP AUTH."))
    oauth2_token = TextLine(
        title=_("OAuth 2.0 token"), required=False,
        description=_("Dotted name of a callable returning the username's"
                      " OAuth 2.0 access token, for AUTH XOAUTH2 instead of"
                      " a password (or, in Python, the callable)."))
    oauth2_token_command = TextLine(
        title=_("OAuth 2.0 token command"), required=False,
        description=_("Command line, run without a shell, printing the"
                      " access token, for AUTH XOAUTH2 instead of a"
                      " password."))
    no_tls = Bool(
        title=_("No TLS"), default=False, required=False,
        description=_("Never use STARTTLS, even when offered; a password"
                      " or token is then sent unencrypted, even to a relay"
                      " on another host."))
    force_tls = Bool(
        title=_("Force TLS"), default=False, required=False,
        description=_("Refuse to send unless the connection is encrypted:"
                      " fail when the server does not offer STARTTLS."))
    implicit_tls = Bool(
        title=_("Implicit TLS"), default=False, required=False,
        description=_("Speak TLS from the first byte (SMTPS, usually port"
                      " 465) instead of upgrading with STARTTLS."))
    timeout = Float(
        title=_("Timeout"), default=10.0, required=False,
        description=_("Seconds to wait for each network operation."))
    tls_verify = Bool(
        title=_("Verify TLS certificates"), default=True, required=False,
        description=_("Check the relay's certificate and host name."
                      " Turning this off exposes the password and the mail"
                      " to anyone who can intercept the connection."))
    tls_ca_file = TextLine(
        title=_("CA file"), required=False,
        description=_("PEM file of the certificate authorities to trust"
                      " instead of the system's."))

    def connect():
        """Open a connection to the relay and return an `IMailerConnection`.

        EHLO, TLS and AUTH are done here, so the errors of a bad
        configuration (`MailerConfigurationError`) and of an unreachable
        relay (`TemporaryDeliveryError`) surface before any message.
        """


class IOAuth2TokenSource(Interface):
    name = Attribute("What it runs, for messages: never a secret.")

    def __call__():
        """A new access token (text, or an OAuth 2.0 token response dict);
        raises `MailerConfigurationError` when it cannot get one."""


class IOAuth2TokenProvider(Interface):
    """The access tokens of an `ISMTPMailer`'s user, for its connections.
    """

    def token():
        """``(token, fresh)``: a token cached until it expires or is
        refused, else a new one from the source (``fresh``).  Raises
        `MailerConfigurationError` when there is none.  Thread-safe."""

    def refused(token):
        """The relay refused *token*: `token` must not give it again."""


class IMailEvent(Interface):
    """Something happened to a message sent through an `IMailDelivery`.

    Mail events are notified only after the transaction that sent the
    message has committed (never for one that did not), each in a
    transaction of its own that a subscriber may commit.  A subscriber that
    raises never affects the sender.
    """

    messageId = TextLine(
        title=_("Message id"),
        description=_("The id returned by IMailDelivery.send, without"
                      " angle brackets."))


class IMailSentEvent(IMailEvent):
    """The relay accepted the message (for at least one recipient)."""


class IMailErrorEvent(IMailEvent):
    """The message could not be delivered (to some or all recipients)."""

    errorMessage = TextLine(
        title=_("Error message"),
        description=_("What went wrong, as the relay or the mailer said."))


class MailDeliveryError(Exception):
    """A mailer could not deliver a message.  ``code`` and ``reply``: the
    SMTP reply, if any; ``recipients``: refused ones -> ``(code, reply)``.
    """

    def __init__(self, message, code=None, reply=None, recipients=None):
        super().__init__(message)
        self.code = code
        self.reply = reply
        self.recipients = dict(recipients or {})


class PermanentDeliveryError(MailDeliveryError):
    """The relay refused the message for good (5xx): do not try again."""


class TemporaryDeliveryError(MailDeliveryError):
    """The message may go through later: a 4xx reply, a dropped connection,
    a timeout, an unreachable relay."""


class MailerConfigurationError(MailDeliveryError, RuntimeError):
    """The mailer's settings are wrong, not the message: authentication
    refused, TLS required but not offered, a certificate that does not
    verify.  Rejecting messages for this would be wrong.  A RuntimeError
    too, as 7.3 raised for force_tls without STARTTLS and AUTH not offered.
    """


class GreetingRefusedError(TemporaryDeliveryError, RuntimeError):
    """The relay refused EHLO and HELO (a RuntimeError in 7.3 too)."""
