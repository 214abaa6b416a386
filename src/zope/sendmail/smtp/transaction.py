"""The SMTP transactions carrying one message, as the relay's cap allows.

`SMTPTransactions` (a mixin of `SMTPConnection`) sends a message over the
open connection: MAIL, RCPT for each recipient, DATA.  A relay that takes
fewer recipients per message than it has says ``452 4.5.3 Too many
recipients`` (RFC 5321 4.5.3.1.10) at the first one too many: the rest go
at once in further transactions on the same connection, as many at a time
as it took (``max_recipients``, remembered for the connection's life and
set by whoever keeps it longer: the queue processor's `RelaySchedule`).
Each recipient gets the message once: those of a transaction that went
through are never sent it again, whatever happens to a later one.
"""
import logging
import smtplib

from zope.sendmail.smtp.classify import DATA
from zope.sendmail.smtp.classify import MAIL
from zope.sendmail.smtp.classify import classify_error
from zope.sendmail.smtp.classify import classify_reply
from zope.sendmail.smtp.classify import is_cap
from zope.sendmail.smtp.classify import is_throttling
from zope.sendmail.smtp.classify import refused_error
from zope.sendmail.smtp.classify import unsent_reply
from zope.sendmail.interfaces import MailDeliveryError


log = logging.getLogger(__name__)


class _Reconnect(Exception):
    """The relay dropped a reused connection before this message."""


class SMTPTransactions:
    """The transactions of a message over `SMTPConnection`'s ``_smtp``
    (its ``relay``, ``mailer``, ``_used`` and ``_discard``)."""

    #: Recipients the relay takes in one transaction, once it said so
    #: (see `IMailerConnection`); None: no cap known.
    max_recipients = None

    def _transaction(self, fromaddr, toaddrs, message):
        """Send *message* in as many transactions as the relay's recipient
        cap needs (one, mostly); the refused recipients, as `send`."""
        reused = self._used
        # Refused before a word is said: the connection stays as it was.
        sender, recipients, options = self._mail_options(fromaddr, toaddrs,
                                                         message)
        self._used = True
        refused, sent, rest = {}, [], recipients
        try:
            while rest:
                # Only the first MAIL of a reused connection may find it
                # dropped while idle; a later one is in mid-message.
                accepted, rest = self._chunk(
                    (fromaddr, sender, options), rest, message, refused,
                    reused and rest is recipients)
                sent.extend(accepted)
        except MailDeliveryError as e:
            if not sent:
                raise  # nothing went out: as for a single transaction
            # Those of the earlier transactions have the message and must
            # never get it again; the others are refused as this one was.
            done = set(sent)
            refused.update(dict.fromkeys(
                [a for a, wire in recipients
                 if a not in done and a not in refused], unsent_reply(e)))
        if not sent:
            raise refused_error(refused)  # RSET said: see _chunk
        return refused

    def _chunk(self, envelope, recipients, message, refused, reconnect):
        """One transaction of *envelope* (the sender as given and on the
        wire, the MAIL options): MAIL, RCPT for as many *recipients*
        (``(address, wire)`` pairs) as the relay takes, DATA if it
        accepted any.  Adds the recipients refused to *refused*; returns
        those who got the message, and the pairs left for another
        transaction (never all of *recipients*: each transaction makes
        progress).  With *reconnect*, a MAIL finding the connection
        dropped raises `_Reconnect`."""
        smtp, (fromaddr, sender, options) = self._smtp, envelope
        try:
            try:
                code, reply = smtp.mail(sender, options)
            except (smtplib.SMTPServerDisconnected, OSError):
                if not reconnect:
                    raise
                raise _Reconnect() from None
            if code == 421 and reconnect and \
                    not is_throttling(code, reply, MAIL):
                # A relay closing an idle connection (a 421 saying "too
                # fast" is the relay's condition: see classify).
                raise _Reconnect()
            if code != 250:
                raise self._refusal(classify_reply(
                    code, reply, f'sender {fromaddr} refused', stage=MAIL))
            accepted, rest = self._recipients(recipients, refused)
            if not accepted:
                self._refusal(None)  # no DATA without a recipient
                return accepted, rest
            code, reply = smtp.data(message)
            if code != 250:
                raise self._refusal(classify_reply(
                    code, reply, 'message refused', stage=DATA))
            return accepted, rest
        except (_Reconnect, MailDeliveryError):
            raise
        except Exception as e:
            # Dropped, timed out, or an odd reply: the connection is in an
            # unknown state, so the next message gets a fresh one.
            self._discard()
            raise classify_error(e, f'sending via {self.relay}',
                                 self.mailer) from e

    def _recipients(self, recipients, refused):
        """RCPT for *recipients* up to the relay's cap: the addresses
        accepted, and the pairs left for another transaction."""
        smtp, cap, accepted = self._smtp, self.max_recipients, []
        if cap is not None and cap < 1:
            cap = None  # a cap of none would never make progress
        for index, (address, wire) in enumerate(recipients):
            if cap is not None and len(accepted) >= cap:
                return accepted, recipients[index:]
            code, reply = smtp.rcpt(wire)
            if code in (250, 251):
                accepted.append(address)
            elif not is_cap(code, reply):
                refused[address] = (code, reply)
            elif index:
                # RFC 5321 4.5.3.1.10: the rest go in another transaction,
                # and so many at most in each from now on.
                if accepted and (cap is None or len(accepted) < cap):
                    self.max_recipients = len(accepted)
                log.debug('%s took %d recipients in one transaction; %d'
                          ' more in another', self.relay, len(accepted),
                          len(recipients) - index)
                return accepted, recipients[index:]
            else:
                # Capped at the first recipient: no transaction can make
                # progress now.  Temporary for each one left (a 552 too:
                # see classify.is_permanent).
                refused.update(dict.fromkeys(
                    [a for a, wire in recipients], (code, reply)))
                return accepted, []
        return accepted, []

    def _refusal(self, error):
        """Prepare the connection for the next transaction after a refused
        one (*error*; None when no recipient was accepted)."""
        if error is not None and error.code == 421:
            self._discard()  # the relay is closing this connection
        else:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()
        return error
