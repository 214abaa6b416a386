"""Mailers with only 7.3's `IMailer` methods, driven as connections.

A mailer without ``connect()`` (one written for 7.3) is used through a
`SingleMessageConnection`, by direct delivery and the queue processor
alike, so that both treat such mailers as 7.3 did.
"""
import warnings

from zope.interface import implementer

from zope.sendmail.smtp.classify import classify_sendmail_error
from zope.sendmail.interfaces import IMailerConnection


@implementer(IMailerConnection)
class SingleMessageConnection:
    """A connection for a mailer with only the `IMailer` methods: each
    message goes through ``mailer.send``.  The one place that drives such
    mailers, for direct delivery and the queue processor alike: as 7.3
    did, a ``vote`` or ``abort`` that is None is skipped, and a missing
    ``vote`` is skipped with a DeprecationWarning."""

    #: A 7.3 mailer sends each message in one transaction.
    max_recipients = None

    def __init__(self, mailer):
        self.mailer = mailer
        self._voted = False

    def vote(self, fromaddr, toaddrs, message):
        """Let the mailer prepare to send (direct delivery's vote)."""
        try:
            vote = self.mailer.vote
        except AttributeError:
            warnings.warn(f'the mailer {self.mailer!r} has no vote method;'
                          f' sending without a vote', DeprecationWarning)
            return
        if vote is not None:
            vote(fromaddr, toaddrs, message)
            self._voted = True

    def send(self, fromaddr, toaddrs, message):
        self._voted = False  # the send uses what the vote prepared
        if isinstance(message, memoryview):
            message = bytes(message)  # as 7.3 gave it: bytes
        try:
            return self.mailer.send(fromaddr, toaddrs, message)
        except Exception as e:
            error = classify_sendmail_error(
                e, f'sending via {self.mailer!r}', self.mailer)
            if error is e:
                raise
            raise error from e

    def close(self):
        """Give up what a vote prepared and no send used."""
        abort = getattr(self.mailer, 'abort', None)
        if self._voted and abort is not None:
            self._voted = False
            abort()
