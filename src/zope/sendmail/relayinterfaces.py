"""The contracts of a relay's limits: its conditions, the schedule, reuse.

A relay that limits how many connections or messages it takes says so in
its replies.  `classify` turns those replies into the exceptions below, all
`TemporaryDeliveryError` subclasses (so code that only knows 7.3's classes
retries them); a queue processor tells an `IRelaySchedule` what happened
and asks it how many connections to use and how fast to send, as Postfix's
queue manager decides for its delivery agents.  An `IConnectionCache`
keeps a connection open between a direct delivery's transactions.  Kept
apart from
`zope.sendmail.interfaces`, which holds the package's other contracts.
"""
from zope.interface import Attribute
from zope.interface import Interface

from zope.sendmail.interfaces import TemporaryDeliveryError


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
    itself (greylisting, a full mailbox: see `zope.sendmail.classify`).
    Send it again after a pause, slower, without counting an attempt
    against it."""


class QuotaExceededError(TemporaryDeliveryError):
    """The relay's quota for a period (a day) is used up (``454 ... Daily
    message quota exceeded``, ``554 5.2.0 ... QuotaExceeded``): nothing is
    sent until it renews; no message is to blame."""


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


class IThrottledMessages(Interface):
    """The messages the relay throttled, remembered by a queue processor
    across its passes: so that a throttled message is never sent again
    before the pause the throttle called for, and is deferred as a
    temporary failure only once throttled for longer than the schedule's
    ``throttle_patience``, however many passes that took.  Messages are
    named by their paths.  Thread-safe; no method blocks or raises."""

    def throttled(path, wait):
        """The relay throttled the message at *path* now: it is not to be
        sent for *wait* seconds.  The first such time is kept."""

    def since(path):
        """When the message at *path* was first throttled (on a monotonic
        clock), or None."""

    def wait(path):
        """Seconds before the message at *path* may be sent again; 0 when
        it may go now (or was never throttled)."""

    def forget(path):
        """The message was sent, deferred or set aside."""

    def prune():
        """Forget the messages no longer in the queue (sent by another
        processor, removed by an operator)."""


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
