"""The contract of a shared queue's single active processor: its lease.

`zope.sendmail.lease` implements it; `QueueProcessorThread` holds one on a
queue on a network file system (or when told to), and its `QueueProcessor`
asks `IProcessorLease.may_send` before each message.
`zope.sendmail.interfaces` exports it too.
"""
from zope.interface import Attribute
from zope.interface import Interface


class IProcessorLease(Interface):
    """The right to be the one active processor of a shared queue.

    Used by a `IMailQueueProcessor` on a network file system (or when
    forced): it sends only while `may_send` says so.  The holder renews
    the lease file every ``renew`` seconds from a heartbeat thread; a
    standby takes it over once it has seen it unchanged for ``timeout``
    seconds, or at once when it is absent or its holder provably dead.
    Writers (deliveries) never consult it.
    """

    path = Attribute("The lease file, in the queue directory.")

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
