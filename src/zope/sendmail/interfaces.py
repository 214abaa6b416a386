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

The contracts are grouped as the package is: sending mail, the SMTP side
(`zope.sendmail.smtp`), queue storage (`zope.sendmail.stores`: an
`IQueueStore` is all that deliveries, processors and operators know of a
queue), processing a queue (`zope.sendmail.processing`), and the errors.
"""
from zope.i18nmessageid import MessageFactory
from zope.interface import Attribute
from zope.interface import Interface
from zope.schema import Bool
from zope.schema import Float
from zope.schema import Int
from zope.schema import Password
from zope.schema import TextLine


_ = MessageFactory('zope')


###########################################################################
# Sending mail
#
# What an application calls, and what it is told: a delivery joins the
# transaction; events say what became of each message id.


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
    """Writes each message into a queue when the transaction commits.

    The queue's store (`IQueueStore`) takes the message at ``send()``,
    makes it durable before the vote succeeds and visible to processors in
    ``tpc_finish``.  A Maildir queue writes it into ``tmp/`` at once and
    moves it into ``new/`` at the finish; a queue in PostgreSQL keeps it
    in memory until the vote, which inserts the transaction's messages and
    commits.
    """

    queuePath = TextLine(
        title=_("Queue path"),
        description=_("The queue as given: the pathname of a Maildir"
                      " directory, or a PostgreSQL URL (which may hold a"
                      " password: show `zope.sendmail.stores.queue_name`"
                      " of it instead)."))


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


###########################################################################
# Mailers: the SMTP side
#
# A mailer owns the conversation with a relay; a connection carries many
# messages.  `zope.sendmail.smtp` implements these.


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

    relay = Attribute(
        "Text naming the relay this connection talks to, ``host:port``"
        " (never a credential), for logs and metrics; a failover mailer's"
        " connection names the relay it chose, and changes it when it"
        " switches.  A connection of a mailer written for 7.3 may lack it"
        " or hold None: readers then use the mailer's ``hostname:port``"
        " if it has them, else ``'unknown'``.")

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


class IFailoverMailer(IMailer):
    """Relays through the first of several mailers (relays) that works.

    Deliveries and queue processors use it as any mailer with
    ``connect()``: a direct delivery through `cached_connect` (each relay
    keeps its own idle connection) or the 7.3 methods ``vote``, ``send``
    and ``abort``; a queue processor through ``connect``, asking
    `next_relay` first to book the connection with that relay's
    schedule.  The mailers are tried in their order (``round_robin``:
    starting from the next one in turn, for each new connection).

    A relay is skipped for ``retry_period`` seconds (a monotonic clock)
    after a condition that blames the relay and no message: it cannot
    be reached (connection refused, timed out, greeting or EHLO and HELO
    refused), refuses the login, has no TLS where it is required or
    fails the certificate check (`MailerConfigurationError`), or says
    its quota is used up (`QuotaExceededError`), whether while
    connecting or answering a message; then it is tried again, and
    taken back when it works.  Both are logged, naming the relay.  When
    every relay is being skipped, all are tried all the same, in order:
    nothing is gained by sending nothing.

    Must never: offer a message that a relay refused (a 5xx for the
    message, or for every recipient) to another relay, nor a message
    some recipients got to another relay; switch relays for throttling
    ("too fast", `ThrottledError`) or a connection turned away
    (`RelayBusyError`), which slow the sender down instead; send a
    credential of one relay to another (each mailer talks to its own
    relay with its own settings); share one relay's schedule, idle
    connection or skipping with another.
    """

    mailers = Attribute("The mailers, one per relay, in their order.")
    relays = Attribute(
        "The names of their relays (``host:port``), in the same order.")
    retry_period = Attribute(
        "Seconds a relay is skipped after a condition of its own.")
    round_robin = Attribute(
        "Whether new connections are spread over the relays that are up,"
        " rather than all going to the first that works.")

    def connect():
        """An `IMailerConnection` to the first relay that takes it (see the
        interface), whose ``relay`` names it.  A relay turning the
        connection away (`RelayBusyError`) ends the attempt: that error is
        raised and no other relay is tried.  Raises when no relay took
        the connection: the error class shared by every relay's failure
        (`MailerConfigurationError`, `QuotaExceededError`), else
        `TemporaryDeliveryError`; its text names each relay and what it
        said."""

    def cached_connect():
        """As `connect`, but from the chosen relay's connection cache when
        its mailer keeps one (direct delivery)."""

    def next_relay():
        """The name of the relay the next `connect` tries first; never
        changes any state."""

    def skipped():
        """The relays being skipped now: name -> seconds left."""


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
        connection and raise `zope.sendmail.smtp.client.ReplyLimitError`
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


class ISMTPClient73(Interface):
    """An SMTP client made by a mailer's own ``smtp`` factory that is not
    an `smtplib.SMTP`: a test double, a mock, a transport of the user's.

    7.3's mailer made its client with ``smtp(hostname, str(port),
    timeout=timeout)`` (no ``timeout`` when the mailer's is None) and drove
    it with smtplib's methods; code and tests that set ``smtp`` to a
    factory of their own rely on that, and
    `zope.sendmail.smtp.connection.SMTPConnection` does the same:
    it calls the factory so (adding ``context``, the mailer's TLS context,
    only for a subclass of `smtplib.SMTP_SSL`), drives a client that is an
    `smtplib.SMTP` as smtplib's own (MAIL, RCPT, DATA), and any other
    through this interface, as 7.3 did, one thread at a time:
    ``ehlo()``, ``helo()`` when EHLO is refused; ``has_extn('starttls')``
    and, when offered and the mailer is not ``no_tls``, ``starttls()`` and
    ``ehlo()`` again; ``has_extn('auth')`` and ``login(username,
    password)`` when the mailer has credentials; ``sendmail(fromaddr,
    toaddrs, message)`` with the arguments the mailer's ``send`` was given;
    ``quit()``, then ``close()``, whatever ``sendmail`` did.  One client
    carries one message, as in 7.3: a connection sending several makes a
    client for each.

    Such a client does its own TLS: the mailer's ``tls_verify``,
    ``tls_ca_file`` and ``ssl_context`` are not given to it.  Credentials
    never go unencrypted to a relay that is not on this host: where the
    client has a socket (``sock``, a `socket.socket`), its class says
    whether the connection is encrypted and its peer whether the relay is
    local; a client without one is taken at its word, as 7.3 took it
    (encrypted after a ``starttls()`` that raised nothing, or when its
    factory was asked for implicit TLS), and its relay is not known to be
    local.  A mailer with ``implicit_tls`` refuses a client whose socket
    is not encrypted.
    """

    sock = Attribute(
        "The client's socket, a `socket.socket`; None when it has none"
        " (anything else it calls ``sock`` is not looked at).")

    def ehlo():
        """``(code, text)``: the reply to EHLO."""

    def helo():
        """``(code, text)``: the reply to HELO; called only after a refused
        EHLO."""

    def has_extn(name):
        """Whether the relay offers the extension *name*; false for a
        client without ``has_extn``."""

    def starttls(context=None):
        """Start TLS as the client does it (*context* is never passed on:
        7.3 called ``starttls()``); ``(code, text)``: what the client
        returned, or ``(220, ...)`` when it returned no reply and raised
        nothing."""

    def login(user, password):
        """Authenticate; raise `smtplib.SMTPAuthenticationError` when
        refused."""

    def sendmail(from_addr, to_addrs, msg):
        """Send *msg*; the recipients refused while others took it (a dict,
        as smtplib's), or anything else for none.  Raise as smtplib does
        when the relay refuses the sender, the message or every
        recipient."""

    def quit():
        """Say QUIT and close."""

    def close():
        """Close without a word."""


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


class IConnectionCache(Interface):
    """Keeps one idle connection of a mailer for its next user.

    Used by a direct delivery (through ``SMTPMailer.cached_connect``), so
    that a transaction does not open a connection of its own; never by a
    queue processor, whose schedule counts its connections.
    """

    idle = Attribute("Seconds an idle connection is kept, at most.")

    def acquire():
        """An `IMailerConnection` for the caller alone: the idle one if it
        has been idle less than `idle` seconds (the relay may still have
        closed it: its next ``send`` reconnects), else a new one (raising
        as ``connect`` does).  Its ``close()`` gives it back to the cache,
        or closes it when a ``send`` raised on it."""

    def expire():
        """Close the idle connection if its time is up; return when it is
        up, or None when no connection is idle any more."""

    def clear():
        """Close the idle connection now (QUIT); harmless when none."""


###########################################################################
# Queue storage
#
# Where queued mail waits.  `IQueueStore` is the one contract between a
# queue and everything that writes to it, sends from it or looks after it:
# deliveries, processors and operators' commands talk to a store, never
# to its files.  `zope.sendmail.stores.open_store` chooses the store from
# what the user gives; `zope.sendmail.stores.maildir` is the first store
# (a Maildir directory, in 7.3's file format), and the contracts after
# `IQueueStore` are its parts: the folder and the writers 7.3 had, the
# notices of odd entries, and the lease that lets one processor at a time
# send from a queue shared over a network file system.


class IQueueStore(Interface):
    """A mail queue: the messages committed by deliveries, waiting to be
    sent by processors, and what operators see of them.

    Three kinds of callers, each through methods of its own:

    - a queued delivery, during and at the end of each transaction: `add`
      for each message sent, then `vote` and `finish` as the transaction
      commits, or `discard` (see `zope.sendmail.datamanager`);
    - a queue processor, in passes: `acquire`, `due`, `claim` and what
      the claimed message offers, `present`, now and then `housekeeping`;
      between passes it waits on its `waiter`; `close` when it stops;
    - an operator (``zope-sendmail --status``, ``--list``...): `status`,
      `entries`, `others`, `requeue_rejected`, `purge_rejected`.

    Nothing outside a store knows how it keeps messages: no caller builds
    a file name, lists a directory, reads a side file, or takes a time of
    its own clock where the store's decides.  Messages are named by the
    entries a store hands out; times are on the store's clock (`now`),
    in seconds since the epoch.

    Any number of store objects, in any number of threads, processes and
    hosts, may be open on one queue at once: the store makes sure that a
    message is claimed by one processor at a time, that a committed message
    is never lost, and that a processor that dies holding claims holds
    them up only as long as the store can tell it from a live one (at
    once where the operating system or the database says so).  Every
    method may be called from any thread; what a store hands out (items,
    entries, claimed messages, waiters) belongs to the caller that got it.
    No method raises for one odd message: what cannot be used is logged
    (once, not at every pass) and skipped.
    """

    name = Attribute(
        "The queue as logs and the program name it (the Maildir's path as"
        " given); never holds a password.")

    key = Attribute(
        "Text naming the queue within this host, the same for every store"
        " object open on it (the Maildir's real path): what this process's"
        " registries go by (processor threads, startup registrations,"
        " wake-ups).")

    def now():
        """The store's clock, in seconds since the epoch: what due times,
        retry times and ages are judged by.

        A processor computes a deferred message's next attempt from it,
        never from a clock of its own.  Cheap: a store on a server may keep
        the offset of the server's clock rather than ask it each time.
        """

    # What a delivery writes through, at commit.

    def add(message_id, fromaddr, toaddrs, message):
        """Take one message of a transaction being committed; return an
        item, which the caller hands back to `vote`, `finish` or `discard`
        (the items of one transaction are its batch).

        Called by a queued delivery's ``send``, with the message's id (for
        log lines), its envelope (*toaddrs* a sequence of recipients, as
        `IMailDelivery.send` checked them) and its bytes, ready to be sent
        (CRLF line endings, a ``Message-Id``).  A store may write it now
        (the Maildir store writes it into ``tmp/``, so that a big
        transaction is not held in memory) or keep it until `vote`.  May
        raise (a full disk): the delivery then raises from ``send``.

        Must never make the message visible to processors.
        """

    def vote(items):
        """Make the messages of *items* durable: once this returns, a crash
        or a power loss does not lose them.  Called in ``tpc_vote``, after
        every other participant of the transaction voted; may raise, which
        aborts the transaction (and `discard` follows).

        Must never make a message visible to processors before every item
        is durable.  A store that cannot make them durable without making
        them visible (a database commits them) may make them visible here:
        the mail data manager votes last, so that only the commit of the
        transaction itself can still fail after it.
        """

    def finish(items):
        """Make the messages of *items* visible to processors, and wake the
        processors waiting on this queue (see `waiter`).  Called in
        ``tpc_finish``: must not raise, whatever goes wrong.  A message
        that cannot be queued now is logged as an ERROR naming its message
        id and where an operator finds it."""

    def discard(items):
        """Forget the messages of *items*: the transaction aborted, or a
        savepoint was rolled back.  Harmless for items discarded already;
        must not raise.  Never called after `finish`."""

    # What a processor asks.

    def acquire():
        """Whether this processor may work on the queue now; called at
        the start of each pass.  True for a store whose processors all
        work at once.  A store that lets one processor at a time send (the
        Maildir store on a network file system, by its processor lease)
        answers whether this one holds that right now (kept, taken, or
        taken over from a holder that is gone), and starts what keeps it
        (a heartbeat); when the right comes later, it wakes this store's
        waiters.  False makes this processor a standby: it starts no
        message.  Never blocks for long, never raises."""

    def may_send():
        """Whether a message may be started now: asked before each one.
        False once this processor lost the right to work on the queue (a
        lease it cannot renew): it then starts no more messages and its
        pass ends as a standby's.  Never blocks (it is asked while a hard
        network mount may hang), never raises."""

    def standby_wait(stopping):
        """Wait a moment as a standby that would give up unless the holder
        of the queue is gone (a one-shot ``zope-sendmail`` run): return
        True to call `acquire` again, False when waiting longer is
        pointless -- the holder was seen alive, the store's takeover bound
        has passed since the standby began, or *stopping* (a
        ``threading.Event``) is set.  A store whose processors all work at
        once returns False at once."""

    def due(limit=None):
        """The messages due now (by the store's clock), oldest first: an
        `IDueMessages` with at most *limit* entries (all of them when
        None), whether more were due, and when the next deferred one falls
        due.  Only what is held of the listing is kept in memory.  An
        entry is a hint, not a promise: the message may be sent by another
        processor before it is claimed."""

    def claim(entry):
        """Claim the message of *entry* (from `due`) for this processor
        alone; return an `IClaimedMessage`, or None when another processor
        holds it, it is gone, or it is no longer due (another processor
        deferred it since the listing).  Two claims of one message never
        both succeed, in any threads, processes or hosts; a claim left by
        a dead processor is taken over as soon as the store can tell
        (never while its holder may be alive).  Never raises for the
        message's sake: a claim that cannot be made is logged and None."""

    claim_ahead = Attribute(
        "How many messages one connection of a processor claims at once "
        "with `claim_many` (at least 1): 1 where a claim costs nothing "
        "but the claim (the Maildir store's files), more where each claim "
        "is a round trip to a server (the PostgreSQL store).  A processor "
        "claims ahead no more than it is about to send over one "
        "connection.")

    def claim_many(entries):
        """Claim the messages of *entries* (a sequence, from `due`) at
        once, as `claim` would claim each: a list as long as *entries*,
        holding for each an `IClaimedMessage` or None.  Each claim held is
        its caller's, to dispose of or release as any other; a store may
        leave the bytes of a big message to be read by its
        `IClaimedMessage.read`, so that what claims held ahead cost in
        memory is bounded.  Never raises for the messages' sake."""

    def present(keys):
        """Those of *keys* (of entries) whose messages are still in the
        queue where their entry found them: not sent, deferred or set
        aside since.  For a processor's memory of messages across passes
        (`IThrottledMessages`), which must forget the others."""

    def waiter():
        """A new `IQueueWaiter`: what a processor waits on between passes.
        It is woken when a delivery of this process commits to the queue
        (and by whatever else the store learns of: a notification from
        another host), so that mail goes out at once rather than at the
        next poll."""

    def housekeeping():
        """Tidy what dead writers and processors left behind (the Maildir
        store: files left in ``tmp/``, claims and retry records whose
        message is gone), never what a live one still uses.  Called by a
        processor now and then (hourly by default), while it may work on
        the queue; logs what it removes or cannot remove, never raises
        for a file's sake."""

    def close(timeout=None):
        """Give up what this store object holds for its processor: the
        right to work on the queue (so that a standby takes over at once),
        its background work (waiting at most *timeout* seconds for it),
        connections.  Called when the processor stops; harmless when
        called twice or when nothing is held.  The store may be used
        again afterwards: `acquire` starts afresh."""

    # What an operator asks: safe while processors run.  Only rejected
    # messages, which no processor touches, are ever moved or deleted.

    def status():
        """An `IQueueStatus`: how many messages are in each state, when
        the next deferred one is due, how old the oldest waiting one is."""

    def entries():
        """Every message, as `IListedMessage` objects, by state (being
        sent, queued, deferred, rejected), then oldest first.  What is
        shown of a message is read from it, bounded; a message that
        vanishes meanwhile is left out."""

    def others():
        """What the queue holds that is no message (a FIFO or a symbolic
        link in a Maildir's ``new/``): ``(location, what it is)`` pairs,
        never opened nor followed, for an operator to remove."""

    def requeue_rejected():
        """Put every rejected message back into the queue as a new message
        (a new name: its age and attempts start afresh); return
        ``(location before, location after)`` of each."""

    def purge_rejected(age, now=None):
        """Delete the rejected messages set aside at least *age* seconds
        before *now* (the store's `now` by default); return ``(location,
        when it was set aside)`` of each."""


class IQueueEntry(Interface):
    """A message of a queue, as a listing found it (`IQueueStore.due`)."""

    key = Attribute(
        "Identifies the message in the store while it stays where the"
        " listing found it (the Maildir store: its path); hashable.")

    name = Attribute(
        "A short name of the message, for reasons and log lines, and for"
        " its events when it has no Message-Id (the Maildir store: the"
        " file's name).")

    location = Attribute(
        "Where an operator finds it, for log lines and listings (the"
        " Maildir store: its path, or ``new/NAME`` in a listing).")


class IDueMessages(Interface):
    """What `IQueueStore.due` found."""

    entries = Attribute("`IQueueEntry` objects, oldest first.")

    more = Attribute("Whether more messages were due than `entries` holds.")

    next_due = Attribute(
        "When (on the store's clock) the first deferred message not yet"
        " due falls due, or None.")


class IRetryState(Interface):
    """What a store remembers of a message's attempts, besides the message:
    kept when a message is deferred, given back with its next claim.  The
    message's own bytes never change for this bookkeeping."""

    queued = Attribute("When the message was queued (store's clock).")

    attempts = Attribute("How many attempts failed so far.")

    last_attempt = Attribute("When the last one failed, or None.")

    next_attempt = Attribute("When the message is due again, or None.")

    last_error = Attribute("What the last failure said, on one line, or ''.")


class IClaimedMessage(IQueueEntry):
    """A message one processor holds the claim of (`IQueueStore.claim`):
    it alone sends it, then disposes of it with exactly one of `complete`,
    `defer` or `reject`, or gives it up with `release`.

    Used by one thread at a time.  While it is held, the store keeps the
    claim (renewing a lease where it has one); after `release`, which
    every holder calls in the end (``finally``), nothing of it is held.
    A holder that lost its claim meanwhile (a lease expired during a
    network cut) changes nothing that is another's: what it can no longer
    do is logged, as a possible duplicate.
    """

    message_id = Attribute(
        "The Message-Id read from the message (without brackets, printable)"
        " or None; known once `read` returned.")

    rejected_as = Attribute(
        "What an operator finds the message as once set aside, for log"
        " lines (the Maildir store: ``.rejected-NAME``).")

    retry = Attribute(
        "The message's `IRetryState`: a fresh one (queued when the message"
        " was, no attempt) for a message never deferred.  Read when first"
        " asked; what cannot be read is counted afresh, with a warning.")

    def read():
        """``(fromaddr, toaddrs, message)``: the envelope, and the bytes to
        send as a buffer (a ``memoryview``: a big message is in memory
        once, never copied).  Raises `UnreadableMessageError` for a
        message that will never be readable (the caller sets it aside),
        and `LookupError` when this holder can no longer read it: disposed
        of already, or a message its claim did not bring along (see
        `IQueueStore.claim_many`) whose claim was lost before it was read,
        or that the store cannot reach now (the message is then not sent
        now, and is tried again later).  What is read is what was claimed,
        whatever was put in its place since."""

    def complete():
        """The message was delivered: remove it and its bookkeeping, and
        release the claim.  A store may record it a moment later, with
        others (the PostgreSQL store's `ICompletions`); until then it stays
        claimed, and what the store object it was claimed from answers
        (`IQueueStore.due`, `present`, `status`, listings) comes after it.
        """

    def defer(retry, recipients=None):
        """Keep the message for a later attempt, due at
        ``retry.next_attempt`` (store's clock), remembering *retry* (an
        `IRetryState`); release the claim.  With *recipients* (fewer than
        the envelope's), only those are tried again: the others got it,
        and must never get it again.  No processor may find it due before
        its time, not even between the steps of the move."""

    def reject(reason):
        """Set the message aside for good, never to be tried again, with
        *reason* (text) for the operator; release the claim."""

    def release():
        """Give up the claim, leaving the message as it is (it is due again
        at once); return None.  Harmless when called twice or after
        `complete`, `defer` or `reject`; removes only what is still this
        claim's own.  Never raises."""


class IQueueWaiter(Interface):
    """What one processor waits on between passes (`IQueueStore.waiter`).
    """

    def wait(timeout):
        """Block until woken or for *timeout* seconds; return whether it
        was woken.  A wake-up that came since the last wait is not lost:
        the wait returns at once."""

    def wake():
        """Wake the wait in progress, or the next one: mail was committed
        to the queue, or the processor itself wants to go on (it is
        stopping, it won the right to work).  From any thread; never
        blocks nor raises."""

    def close():
        """No more wake-ups; harmless when called twice."""


class IQueueStatus(Interface):
    """How a queue is, for ``zope-sendmail --status`` (`IQueueStore.status`).
    """

    counts = Attribute(
        "Messages by state, a dict: ``sending`` (claimed by a processor"
        " now), ``queued`` (never tried), ``deferred`` (waiting for a later"
        " attempt) and ``rejected`` (set aside).")

    waiting = Attribute(
        "Messages waiting for a later attempt, whether or not a processor"
        " is trying one of them again right now.")

    next_attempt = Attribute(
        "When the first deferred message falls due, or None.")

    oldest = Attribute(
        "When the oldest message not set aside was queued, or None.")

    others = Attribute("How many entries are no message (`others`).")

    details = Attribute(
        "What else the store says of itself, as ``(label, text)`` pairs"
        " (the Maildir store: its file system and the processor lease).")


class IListedMessage(IQueueEntry):
    """A message as an operator sees it (`IQueueStore.entries`): the
    fields below are None when unknown.  Everything here comes from the
    queue, and is shown escaped."""

    state = Attribute(
        "``sending``, ``queued``, ``deferred`` or ``rejected``.")

    queued = Attribute("When the message was queued.")

    attempts = Attribute("How many attempts failed so far (0 if none).")

    next_attempt = Attribute("When a deferred message is due again.")

    last_error = Attribute("What the last failure said.")

    reason = Attribute("Why a rejected message was set aside.")

    fromaddr = Attribute("The envelope sender.")

    toaddrs = Attribute("The envelope recipients, a sequence.")

    message_id = Attribute("The Message-Id, without brackets.")

    problem = Attribute(
        "Why the message cannot be read as one (its envelope is broken):"
        " what is wrong, never what it holds; else None.")


class IMaildirFactory(Interface):
    def __call__(dirname, create=False, shared_group=False):
        """Return an `IMaildir` for the directory *dirname*.

        A path that is not a Maildir raises ``ValueError`` naming it.  With
        *create*, a missing or empty directory becomes one; a regular file
        or a directory holding other files is still refused.  A queue that
        others could tamper with raises `UnsafeQueueError` (a
        ``ValueError``); *shared_group* accepts one writable by its group
        (a group of users sharing the queue), never one writable by every
        user.  A queue owned by another user is used, with one warning.
        Factories of 7.3's kind, without *shared_group*, are called
        without it.
        """


class IMaildir(Interface):
    """A Maildir folder: ``tmp/`` for messages being written, ``new/`` and
    ``cur/`` for delivered ones.  Names starting with a dot are not messages.
    """

    def __iter__():
        """Iterate over the paths of the messages in ``new/`` and ``cur/``."""

    def newMessage():
        """Return an `IMaildirMessageWriter` for a new message, visible to
        readers only once the writer commits."""


class IMaildirMessageWriter(Interface):
    """A message being written into a Maildir's ``tmp/``, created
    exclusively with mode 0600 under a name unique across hosts."""

    def write(data):
        """Write *data* (bytes; text is encoded as UTF-8)."""

    def writelines(lines):
        """Write each of *lines*, as ``write`` does."""

    def close():
        """End the writing; the file stays in ``tmp/`` (its descriptor may
        be kept until ``commit`` or ``abort``, for the commit's check)."""

    def commit():
        """Close the file if needed and move it into ``new/``; after
        ``abort``, raise ``RuntimeError``.  What is moved into ``new/`` must
        be the file written, never one put in its place meanwhile."""

    def abort():
        """Close the file if needed and remove it; harmless when called
        twice or after ``commit`` (which it does not undo)."""


class INotices(Interface):
    """Lasting conditions of a queue's entries, each logged once.

    The Maildir store of a queue processor keeps one across the passes:
    its listing of the due messages and its claims report through it what
    they skip (an entry that is not a regular file, a claim file that
    cannot be opened), so that such a condition costs one log line, not
    one per pass.
    """

    def once(path, topic, level, message, *args):
        """Log *message* % *args* at *level* (a ``logging`` level) unless
        it was logged for the entry *path* and *topic* already; return
        whether it was logged now."""

    def retain(paths):
        """Forget what was logged about entries not among *paths* (the
        listing of the queue): a condition that comes back is logged
        again, and the memory holds only what is odd now."""


class IProcessorLease(Interface):
    """The right to be the one active processor of a shared queue.

    Held by the Maildir store of a queue processor on a network file
    system (or when forced), which answers `IQueueStore.acquire`,
    `IQueueStore.may_send` and `IQueueStore.standby_wait` by it: the
    processor sends only while `may_send` says so.  The holder renews the
    lease file every ``renew`` seconds from a heartbeat thread; a standby
    takes it over once it has seen it unchanged for ``timeout`` seconds,
    or at once when it is absent or its holder provably dead.  Writers
    (deliveries) never consult it.
    """

    path = Attribute("The lease file, in the queue directory.")
    timeout = Attribute("Seconds a standby waits for a renewal.")
    renew = Attribute("Seconds between two renewals by the holder.")
    seen_renewal = Attribute(
        "Whether this standby saw the holder renew the lease since it last"
        " looked without taking it: the holder is alive.")
    on_acquire = Attribute(
        "Called (without arguments) whenever the lease is acquired, by the"
        " heartbeat too; or None.")

    def acquire():
        """Look at the lease once: return True if this processor holds it
        now (kept, created or taken over), False while it is a standby.
        Never blocks longer than one read and one write of the file."""

    def may_send():
        """Whether a message may be started now: the lease is held and its
        last renewal started less than ``(timeout - margin) / 2`` seconds
        ago.  Called before each message; never touches the file system,
        so it answers even while a hard NFS mount hangs."""

    def start():
        """Start the heartbeat thread (renewing, or acquiring as a
        standby); harmless when started already."""

    def stop(timeout=None):
        """Stop the heartbeat and remove the lease file if it is still
        this processor's own, so that a standby takes over at once."""


# The parts of the PostgreSQL store (`zope.sendmail.stores.postgresql`):
# the connections of a store object, the lease keeper that ties a
# processor's claims to its database session, and the listener that turns
# notifications into wake-ups.


class IConnectionPool(Interface):
    """The database connections of one PostgreSQL store object, shared by
    the threads that use it (deliveries voting, a processor's connection
    threads claiming).  Each call takes a connection for one database
    transaction and gives it back; a connection found dead (the server
    restarted while it sat idle) is replaced, and the work run again on
    the new one, only where the server cannot have committed it.
    """

    psycopg = Attribute("The psycopg module (imported when the pool was"
                        " made).")

    def connect(autocommit=True, statement_timeout=True):
        """A new connection outside the pool, for a holder or a listener
        that keeps it; the caller closes it."""

    def run(statement, params=None, fetch='all', durable=True, binary=False,
            retry=True):
        """One statement as a transaction of its own; its rows, first row
        or row count (*fetch*).  *durable* False: committed without waiting
        for the server's disk (a processor's changes, harmless to lose in a
        crash of the server); True: as the server is configured (a vote);
        None: either (a read).  Raises psycopg's errors.  With *retry*, a
        statement that failed on a connection found dead runs again on a
        new one (it must be harmless to run twice); without, it is sent
        once, and a connection lost before its answer came raises
        `CommitUnknown <zope.sendmail.stores.postgresql.pool.CommitUnknown>`
        (a vote: the caller finds out whether it committed)."""

    def transaction(work, durable=True, retry=True):
        """``work(connection)`` in one database transaction; what it
        returns.  A connection lost during the COMMIT raises
        `CommitUnknown <zope.sendmail.stores.postgresql.pool.CommitUnknown>`:
        the caller finds out whether it committed."""

    def close():
        """Close the idle connections; the pool may be used again."""


class IVotes(Interface):
    """The votes of one PostgreSQL store object's deliveries: a
    transaction's messages written at once, with a token that tells what
    became of a vote whose answer was lost.  Called by the store's `vote`
    from any thread (each call on a connection of its own)."""

    def cast(rows):
        """Queue *rows* (``(message_id, fromaddr, toaddrs, message)``
        tuples, at least one) atomically, with one notification of the
        queue; return their row ids, in order.  A vote whose connection
        was lost before its answer came is found out on another
        connection: committed, it returns (the ids may then be fewer,
        never wrong ones); not committed, or not to be told within a time
        limit, `QueueError`.  `QueueError` too when the database is
        unreachable or refuses the rows: then nothing was queued (unless
        the error says it cannot be told)."""

    def expire(age=3600.0):
        """Delete the tokens of every store object's votes older than
        *age* seconds (housekeeping: a process that ended left its
        last); return how many.  Raises psycopg's errors."""


class ICompletions(Interface):
    """What records the messages sent through the claims of one
    PostgreSQL store object: deleted in groups by a thread of its own (see
    `zope.sendmail.stores.postgresql.completions`).  Started at the first
    completion, stopped by `IQueueStore.close`."""

    def complete(claimed):
        """Record that the message of *claimed* (a claim of this store) was
        sent: its row deleted if the claim still holds, soon, with others.
        Returns at once, after waiting for the calling thread's previous
        completion, if it is not recorded yet: a thread has at most one
        message waiting to be recorded.  Never raises for the database's
        sake: what cannot be recorded is logged as a possible duplicate."""

    def flush(timeout=None):
        """Wait until every completion handed over so far is recorded (or
        could not be); False if *timeout* seconds passed first.  The store
        calls it before it answers what is due, present, or in the
        queue."""

    def close(timeout=None):
        """`flush`, then stop the thread; completions after are recorded
        at once by their caller."""


class ILeaseKeeper(Interface):
    """What ties a processor's claims on a PostgreSQL queue to its life.

    Started by the store when its processor first acquires the queue or
    claims a message; stopped by `IQueueStore.close`.  It holds a
    session-level advisory lock on a random holder id on a connection of
    its own: claims carry the id, and a claim whose holder's lock no
    session holds is taken over at once.  Its thread renews the leases of
    the claims held every ``renew`` seconds; while it cannot (the database
    is unreachable, its session was lost) `may_send` is False.
    """

    holder = Attribute("The holder id claims are made under now, or None.")
    lease = Attribute("Seconds a lease lasts unrenewed.")
    renew = Attribute("Seconds between two renewals.")

    def start():
        """Take the holder's lock if it is not held (when the database
        answers) and start the thread; harmless when running.  Return the
        holder id or None; never raises for the database's sake."""

    def current():
        """The holder id to claim under, taking a new lock if the last was
        lost; None while the database cannot be reached."""

    def may_send():
        """Whether the holder's lock is held and the last renewal worked.
        Never blocks."""

    def failed(error):
        """A claim found the database unreachable (*error*): `may_send` is
        False until the keeper renews again (it tries within a second)."""

    def add(token):
        """Renew the lease *token* (a claim's) from now on."""

    def discard(token):
        """Renew it no more (the claim was disposed of or released)."""

    def stop(timeout=None):
        """Stop the thread (waiting at most *timeout* seconds) and give up
        the holder's lock: the claims left are free at once."""


class IQueueListener(Interface):
    """What listens for a PostgreSQL queue's notifications on behalf of
    one store object's waiters (`IQueueStore.waiter`): a connection of its
    own, a thread, reconnecting after the server restarts.  A notification
    is a hint; polling stays behind it."""

    listening = Attribute("A ``threading.Event``, set while it listens.")

    def start(timeout=None):
        """Start the thread; wait at most *timeout* seconds until it
        listens; return whether it does.  A database that cannot be
        reached is no error."""

    def stop(timeout=None):
        """Stop listening and close the connection; wait at most *timeout*
        seconds for the thread; return whether it stopped."""


###########################################################################
# Processing a queue
#
# A queue processor relays what a queue holds, asking an `IRelaySchedule`
# how many connections to use and how fast to send, as Postfix's queue
# manager decides for its delivery agents.  `zope.sendmail.processing`
# implements these; `zope.sendmail.startup` starts the registered ones.


class IMailQueueProcessor(Interface):
    """Relays the messages of a queue through a mailer."""

    queuePath = TextLine(
        title=_("Queue path"),
        description=_("The pathname of the queue's Maildir directory, or"
                      " the name of its store (a PostgreSQL URL without"
                      " its password)."))
    pollingInterval = Int(
        title=_("Polling interval"), default=5000,
        description=_("How often the queue is checked for new messages"
                      " (in milliseconds)"))
    mailer = Attribute("The IMailer used to relay the messages.")


class IRelaySchedule(Interface):
    """How many connections to a relay, and how fast: asked and told by
    the queue processor, which keeps one schedule for its relay across
    passes.  The connections know nothing of it.

    All methods are called from the processor's connection threads at
    once, and must be thread-safe.  None of them blocks or raises.
    """

    limit = Attribute("The most connections ever used at once (the"
                      " ``connections`` setting).")
    concurrency = Attribute(
        "The most connections used at once for now: `limit` until the relay"
        " turns one away, then what it took, growing again slowly.")
    rate = Attribute("Messages a second the processor keeps under, or None"
                     " for no limit: ``max_rate`` at most, lower after the"
                     " relay throttled.")
    throttle_patience = Attribute(
        "Seconds a message may keep being throttled before it is deferred"
        " as a temporary failure.")
    max_recipients = Attribute(
        "Recipients the relay takes in one transaction, as a connection"
        " learnt it (see `IMailerConnection.max_recipients`), or None:"
        " given to the connections opened later.")

    def may_open(backlog):
        """Whether to open another connection now, *backlog* messages
        waiting for one.  Always true when none is open or opening (a pass
        needs one); otherwise only while each open connection has enough
        messages waiting, none is being opened, the relay keeps accepting
        connections and messages, and `concurrency` allows.  True books
        the opening: the processor then calls exactly one of `opened`,
        `refused` or `failed`."""

    def opened():
        """The connection booked by `may_open` is open."""

    def refused():
        """The relay turned that connection away (`RelayBusyError`):
        `concurrency` comes down to the connections open now (never below
        one)."""

    def failed():
        """That connection could not be opened for another reason (the
        relay is unreachable, the settings are refused)."""

    def closed():
        """An opened connection was closed."""

    def pause():
        """0 when the next message on this connection may go now (it takes
        its turn in the pace shared by all connections); else the seconds
        to wait before asking again."""

    def sent():
        """The relay answered a message (accepted or refused it for the
        message's sake): the pace may speed up again."""

    def capped(max_recipients):
        """A connection learnt that the relay takes *max_recipients* per
        transaction: `max_recipients` becomes the lowest such cap (None
        and numbers below one change nothing)."""

    def throttled():
        """The relay said "too fast" (`ThrottledError`): the pace slows
        down and every connection pauses; returns the seconds of that
        pause, before which the throttled message is not sent again."""


class IRelaySchedules(Interface):
    """The schedules of the relays of a mailer with several (an
    `IFailoverMailer`), one per relay, kept by a queue processor across
    its passes: one relay's connection limit, pace, throttles and
    recipient cap never govern another's.

    The processor books each connection with the schedule of the relay
    the mailer names as its next (`IFailoverMailer.next_relay`), moves
    the booking to the schedule of the relay the connection then names
    (``IMailerConnection.relay``) when the mailer chose another (or the
    connection switched to another for a message), and tells
    the pace, throttles and caps of each message to the schedule of the
    relay that answered it.  Thread-safe; no method blocks or raises."""

    def get(relay):
        """The `IRelaySchedule` of *relay* (its name, ``host:port``), made
        when first asked for; the same object ever after."""

    def relays():
        """The names of the relays that have a schedule."""


class IThrottledMessages(Interface):
    """The messages the relay throttled, remembered by a queue processor
    across its passes: so that a throttled message is never sent again
    before the pause the throttle called for, and is deferred as a
    temporary failure only once throttled for longer than the schedule's
    ``throttle_patience``, however many passes that took.  Messages are
    named by the keys of their entries (`IQueueEntry.key`).  Thread-safe;
    no method blocks or raises."""

    def throttled(key, wait):
        """The relay throttled the message *key* now: it is not to be sent
        for *wait* seconds.  The first such time is kept."""

    def since(key):
        """When the message *key* was first throttled (on a monotonic
        clock), or None."""

    def wait(key):
        """Seconds before the message *key* may be sent again; 0 when it
        may go now (or was never throttled)."""

    def forget(key):
        """The message was sent, deferred or set aside."""

    def prune(store):
        """Forget the messages no longer in the queue of *store* (an
        `IQueueStore`: sent by another processor, removed by an
        operator)."""


class IProcessingObserver(Interface):
    """Told by a queue processor what became of each message and how its
    relay answered: what metrics count (`zope.sendmail.monitoring.metrics`
    implements it for Prometheus).

    Given to the processor by its constructor (`QueueProcessor`,
    `QueueProcessorThread` ``observer=``); without one, nothing is told
    (`zope.sendmail.processing.observer.NullObserver`).  *queue* is the
    store's `IQueueStore.name` (never a password); *relay* names the relay
    as ``host:port`` text: the connection's ``relay`` attribute, else the
    mailer's ``hostname:port``, else ``'unknown'`` -- never a password.

    Called from the processor's connection threads, several at once,
    after the message's fate is decided (so that an observer never holds
    up the queue): each method must be thread-safe, return quickly, never
    block on I/O and never raise.  A processor logs and ignores an
    observer that raises all the same: counting is never worth a message.
    """

    def sent(queue, relay, seconds):
        """A message was accepted by *relay* (by some of its recipients at
        least, the others refused for good); *seconds* is the time it took
        on the wire, from the first command to the relay's last reply."""

    def deferred(queue, relay):
        """A message failed for now, and waits for a later attempt."""

    def rejected(queue, relay):
        """A message was set aside for good: refused by *relay*, or
        unreadable (*relay* is then the relay it would have gone to)."""

    def expired(queue):
        """A message was set aside because it waited longer than its
        lifetime; it is not counted as `rejected` too."""

    def throttled(queue, relay):
        """*relay* said "too fast" to a message (sent again later)."""

    def connection_refused(queue, relay):
        """*relay* turned a connection away (`RelayBusyError`)."""


class IQueueProcessorRegistration(Interface):
    """A queue whose processor thread is to start when the application
    starts.

    Registered as a utility named after the key of its queue
    (`IQueueStore.key`: the real path of a Maildir directory), in the
    component registry in force when the configuration runs, by the
    actions of ``<mail:queuedDelivery processorThread="true">`` (through
    `zope.sendmail.startup.register_queue`).  It therefore lives and dies
    with that registry: a test's cleanup or a popped test layer takes it
    away, and a registry whose ``__bases__`` hold it sees it, as it sees
    any utility.  Registering a queue again replaces its registration.

    Read by `zope.sendmail.startup.start_processor_threads` when the
    application starts (``IDatabaseOpenedWithRoot``,
    ``IProcessStarting``), which starts one thread per queue that has
    none running in this process (`zope.sendmail.processing.registry`)
    for the registrations of the registry in force then, and by
    `zope.sendmail.startup.committed`.

    A registration describes; it never runs anything.  Registering one
    must never start a thread nor look up the mailer: the mailer is looked
    up when the thread starts.  A registration that cannot start (its
    mailer missing, its directory refused) must never keep another from
    starting, nor make the application's startup notification raise.
    """

    queuePath = TextLine(
        title="Queue path",
        description="The queue as configured: a Maildir directory, or a"
                    " PostgreSQL URL (shown by"
                    " `zope.sendmail.stores.queue_name`, never as it is:"
                    " it may hold a password).")

    mailer = TextLine(
        title="Mailer",
        description="The name of the IMailer utility the thread sends"
                    " through, looked up when it starts.")

    options = Attribute(
        "The keyword arguments of QueueProcessorThread besides the mailer"
        " and the queue (interval, retry, connections, ...), a dict.")

    metrics = Bool(
        title="Metrics",
        description="Whether the thread is counted, and its queue shown,"
                    " in prometheus_client's default registry"
                    " (``<mail:queuedDelivery metrics=\"true\">``).",
        default=False)


###########################################################################
# Monitoring a queue
#
# What monitoring systems read: `zope.sendmail.monitoring` implements
# these (the metrics with the optional extra ``zope.sendmail[metrics]``);
# processors feed the metrics through `IProcessingObserver`.


class IObserving(Interface):
    """How a processor tells its `IProcessingObserver`: from any thread,
    never raising, whatever the observer does."""

    observer = Attribute("The `IProcessingObserver` told.")

    queue = Attribute("The queue's name (`IQueueStore.name`) it tells.")

    def tell(method, *args):
        """Call the observer's *method* with the queue and *args*; log
        what it raises (its traceback once per method), never raise."""


class IThreshold(Interface):
    """A warning and a critical bound on one value of a queue, as a
    monitoring plugin's ``W,C``."""

    warning = Attribute("The warning bound, or None.")

    critical = Attribute("The critical bound, or None.")

    def state(value):
        """0 OK, 1 WARNING (above `warning`) or 2 CRITICAL (above
        `critical`) for *value*; OK for None."""

    def perfdata():
        """``warn;crit`` for performance data (empty where None)."""


class IQueueView(Interface):
    """One queue as metrics show it: its status, read now and then."""

    name = Attribute("The queue's name (`IQueueStore.name`): its label.")

    def read():
        """``(IQueueStatus, the store's now)``, or None when the queue
        cannot be read now.  Called by scrapes, from any thread, any number
        of times: the queue is looked at once per cache period at most,
        one look at a time, and a caller waits a bounded time for it."""


class IQueueMetrics(Interface):
    """The metrics of the queue processors and queues of one registry."""

    registry = Attribute(
        "The ``prometheus_client`` registry the metrics are in.")

    def watch(store):
        """Show the queue of *store* (an `IQueueStore`) at each scrape;
        a store of the same queue (its key) replaces the one shown.
        Looks at nothing now."""

    def unwatch(store):
        """Stop showing the queue of *store*; harmless when not shown."""


class IMetricsCollector(Interface):
    """A collector of ``prometheus_client`` (its protocol), registered in
    a registry, which calls it at each scrape."""

    def describe():
        """The metric families it yields, without their samples: asked
        when it is registered, so it must read nothing."""

    def collect():
        """The metric families with their samples, read now (bounded in
        time)."""


class IMetricsServer(Interface):
    """Serves a registry's metrics over HTTP in a thread of its own."""

    address = Attribute("The address it listens on (127.0.0.1 by default).")

    port = Attribute("The port it listens on: the free port chosen for 0,"
                     " once started.")

    def start():
        """Listen, then serve in a daemon thread; returns the server.
        Raises here, in the caller, what binding raised (a port in use).
        Called once."""

    def stop(timeout=None):
        """Stop serving: close the socket, join the thread (at most
        *timeout* seconds); return whether it stopped.  Harmless when not
        started or called twice."""


###########################################################################
# Errors
#
# Failures are classified by exception class, never by reply texts.  The
# relay's conditions are `TemporaryDeliveryError` subclasses, so code that
# knows only 7.3's classes retries them.


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


class RelayBusyError(TemporaryDeliveryError):
    """The relay is up but turned this connection away: a 4xx greeting or
    reply to EHLO or AUTH (``421``, ``432 4.3.2``, ``454 4.7.0``), or the
    connection reset during the handshake.  Blames no message; one more
    connection than the relay takes, not an unreachable relay."""


class ThrottledError(TemporaryDeliveryError):
    """The relay said "too fast" to this message: a ``421``, a rate in
    words (``454 Throttling failure: Maximum sending rate exceeded``), a
    ``4.7.x`` status answering ``MAIL FROM``; for ``RCPT TO``, only when
    every recipient got such a reply and none was about the recipient
    itself (greylisting, a full mailbox: see `zope.sendmail.smtp.classify`).
    Send it again after a pause, slower, without counting an attempt
    against it."""


class QuotaExceededError(TemporaryDeliveryError):
    """The relay's quota for a period (a day) is used up (``454 ... Daily
    message quota exceeded``, ``554 5.2.0 ... QuotaExceeded``): nothing is
    sent until it renews; no message is to blame."""


class QueueError(Exception):
    """What was named as a queue cannot be used as one: it does not exist
    (an operator's command never makes one: a mistyped path would silently
    become an empty queue), it is something else, or it is refused (see
    `UnsafeQueueError`).  The message says which, and why, on one line."""


class UnreadableMessageError(ValueError):
    """A queued message that cannot be read as one, and never will be (its
    envelope is missing or broken): `IClaimedMessage.read` raises it, and
    the processor sets the message aside.  The message (``str()``) is the
    reason given to the operator and the event: what is wrong and which
    message, never what it holds (a queue file may be anything); ``what``
    names it for log lines."""

    def __init__(self, reason, what):
        super().__init__(reason)
        self.what = what


class UnsafeQueueError(ValueError):
    """A queue directory that others than its owner could tamper with:
    its ``new/``, ``cur/`` or ``tmp/`` is a symbolic link, or it or one of
    them is writable by every user, or by its group (unless the queue is
    opened with *shared_group*).  The message names the directory, says
    why and what to do; nothing in the queue was touched."""
