"""A message claimed from a PostgreSQL queue: `ClaimedMessage`, and what
a row must hold to be sent (`check_envelope`).

The claim is the row's lease token: every change the holder makes
(complete, defer, reject, release) is made only where the row still has
that token, so that a processor that lost its claim (its lease expired
during a network cut and another processor took the message) changes
nothing; it logs a possible duplicate instead.  A row is data anyone with
access to the database may have written: `read` checks what it reads (no
NULLs where text is needed, no control characters in addresses, bounded
sizes) and raises `UnreadableMessageError` for a message that can never
be sent, naming the row, never quoting it.
"""
import logging
import re

from zope.interface import implementer

from zope.sendmail.interfaces import IClaimedMessage
from zope.sendmail.interfaces import UnreadableMessageError
from zope.sendmail.message import message_id_of
from zope.sendmail.stores.postgresql import sql
from zope.sendmail.stores.postgresql.pool import said
from zope.sendmail.stores.retrystate import RetryState


log = logging.getLogger(__name__)

#: The longest address (RFC 5321: 256 for a path; display names make room).
MAX_ADDRESS = 2000
#: The most recipients one row may hold.
MAX_RECIPIENTS = 10000
#: The most characters of a retry's last error or a reason kept or read.
MAX_TEXT = 2000


# ASCII's control characters (checked for every recipient of every
# message: a character class, not a loop in Python).
_CONTROL = re.compile('[\x00-\x1f\x7f]')


def _bad_address(value):
    if not isinstance(value, str):
        return 'is no text'
    if len(value) > MAX_ADDRESS:
        return f'is longer than {MAX_ADDRESS} characters'
    if _CONTROL.search(value):
        return 'holds control characters'
    return None


def check_envelope(fromaddr, toaddrs):
    """What is wrong with the envelope of a row (not what it holds), or
    None."""
    if fromaddr is None:
        return 'no sender'
    problem = _bad_address(fromaddr)
    if problem:
        return f'its sender {problem}'
    if toaddrs is None or not isinstance(toaddrs, list) or not toaddrs:
        return 'no recipients'
    if len(toaddrs) > MAX_RECIPIENTS:
        return f'more than {MAX_RECIPIENTS} recipients'
    for n, address in enumerate(toaddrs, 1):
        problem = 'is empty' if address == '' else _bad_address(address)
        if problem:
            return f'recipient {n} {problem}'
    return None


def one_line(text, limit=MAX_TEXT):
    return ' '.join(str(text).split())[:limit]


@implementer(IClaimedMessage)
class ClaimedMessage:
    """The claim of row *row_id* with lease *token* in *store* (a
    `PostgresStore`); *key* is its entry's; *retry* its `RetryState`."""

    def __init__(self, store, key, row_id, token, retry, envelope):
        self._store = store
        self.key = key
        self.row_id = row_id
        self.name = f'pg-{row_id}'
        self.location = f'{store.name}#{row_id}'
        self.rejected_as = f'{self.location} (rejected)'
        self.message_id = None
        self.token = token
        self.retry = retry
        # (fromaddr, toaddrs, size, message): what the claim read.
        self._envelope = envelope
        self._done = False

    def __repr__(self):
        state = 'done' if self._done else 'held'
        return f'<ClaimedMessage {state} {self.location}>'

    def read(self):
        if self._envelope is None:
            raise LookupError(self.key)  # disposed of already
        fromaddr, toaddrs, size, data = self._envelope
        problem = check_envelope(fromaddr, toaddrs)
        if problem is None and size is None:
            problem = 'no message'
        elif problem is None and data is None:
            if size > self._store.max_message_size:
                problem = (f'a message of {size} bytes, more than'
                           f' {self._store.max_message_size}')
            else:
                data = self._read_message()
        if problem is not None:
            raise UnreadableMessageError(
                f'unreadable queue row {self.name}: {problem}',
                f'unreadable queue row {self.location}')
        data = bytes(data)
        self.message_id = message_id_of(data)
        # A view: a big message is in memory once.
        return fromaddr, tuple(toaddrs), memoryview(data)

    def _read_message(self):
        """The message of a claim that did not bring it along (claimed
        with others: `sql.CLAIM`), read while the claim is still ours."""
        store = self._store
        try:
            row = store.pool.run(sql.READ, {'id': self.row_id,
                                            'token': self.token},
                                 fetch='one', durable=None, binary=True)
        except store.pool.psycopg.Error as e:
            # The database's condition, not the message's: it is not sent
            # now, and is tried again once its claim is released (or its
            # lease runs out).
            log.warning('%s: cannot read the message: %s', self.location,
                        said(e))
            raise LookupError(self.key) from e
        if row is None:
            # The claim was lost meanwhile (its lease expired and another
            # processor took it, or an operator removed the message).
            raise LookupError(self.key)
        if row[0] is None:
            raise UnreadableMessageError(
                f'unreadable queue row {self.name}: no message',
                f'unreadable queue row {self.location}')
        return row[0]

    def _change(self, statement, params, what):
        """Run *statement* on the row if the claim is still ours; log what
        became of it otherwise.  Never raises for the database's sake: the
        message is then left as it is, and its lease runs out."""
        if self._done:
            return
        self._done = True
        self._envelope = None  # the message's bytes go with the claim
        store = self._store
        params = dict(params, id=self.row_id, token=self.token)
        try:
            count = store.pool.run(statement, params, fetch='count',
                                   durable=store.durable_outcomes)
        except store.pool.psycopg.Error as e:
            log.error('%s: cannot record that it was %s (%s): it will be'
                      ' tried again once its lease expires (a possible'
                      ' duplicate)', self.location, what, said(e))
            return
        finally:
            store.keeper_discard(self.token)
        if count == 0:
            log.warning('%s: the claim was lost before it was %s (its lease'
                        ' expired and another processor took it, or an'
                        ' operator removed it): nothing changed, and it may'
                        ' be sent twice', self.location, what)

    def complete(self):
        # Recorded with others by the store's thread (see `completions`).
        if self._done:
            return
        self._done = True
        self._envelope = None
        self._store.completions.complete(self)

    def defer(self, retry, recipients=None):
        toaddrs = None if recipients is None else [str(a) for a in
                                                   recipients]
        self._change(sql.DEFER, {
            'next_attempt': retry.next_attempt,
            'attempts': retry.attempts,
            'last_attempt': retry.last_attempt,
            'last_error': one_line(retry.last_error or ''),
            'toaddrs': toaddrs}, 'deferred')

    def reject(self, reason):
        self._change(sql.REJECT, {'reason': str(reason)[:MAX_TEXT * 10]},
                     'set aside')

    def release(self):
        if self._done:
            return None
        self._done = True
        self._envelope = None
        store = self._store
        params = {'id': self.row_id, 'token': self.token}
        try:
            store.pool.run(sql.RELEASE, params, fetch='count',
                           durable=False)
        except store.pool.psycopg.Error as e:
            # release() never raises (it runs in finally blocks): the
            # message is free again once its lease runs out, or at once
            # if this processor's session is gone.
            log.warning('%s: cannot release the claim (%s); it is free'
                        ' again once its lease expires', self.location,
                        said(e))
        except Exception:
            log.exception('%s: unexpected error releasing the claim',
                          self.location)
        finally:
            store.keeper_discard(self.token)
        return None


def retry_state(queued, due, attempts, last_attempt, last_error):
    """The `RetryState` of a claimed row's columns (hostile values made
    harmless: counts clamped, text on one line)."""
    attempts = min(max(attempts or 0, 0), 10 ** 6)
    deferred = attempts > 0 or last_attempt is not None
    return RetryState(queued, attempts, last_attempt,
                      due if deferred else None,
                      one_line(last_error) if last_error else '')
