"""Fault injection for the SMTP test server.

This module owns the faults a test can make :class:`SMTPTestServer
<zope.sendmail.testserver.server.SMTPTestServer>` inject: their settings
(a mixin of the server), their validation and the drop decision the
protocol asks for at every :data:`DROP_POINTS` point.  Faults are plain
attributes/methods of the server, settable from the test thread at any
time; the server reads them per command.  ``reset()`` restores all of them:

``refuse(address, code, text)``
    RCPT TO for ``address`` gets that reply.  Independently, while
    ``local_part_rules`` is true (the default), a local part starting with
    ``tempfail`` gets 451 and one starting with ``reject`` gets 550, like a
    conventional test sink.
``fail_mail(code, text)`` / ``fail_data(code, text)``
    the reply to every MAIL FROM / every end of DATA (message not recorded).
``drop_at``
    one of :data:`DROP_POINTS` or None: close the connection instead of
    replying at that point ('dot': after the whole message arrived, before
    the 250, message not recorded; 'quit': instead of the 221).  With
    ``drop_once`` true only the next matching connection is dropped.
``delay``
    seconds to wait (asynchronously) before every reply, greeting included.
``stall``
    accept connections but send no greeting while true.
``reject_auth``
    answer every AUTH with 535, even with the right password.
``refuse_ehlo``
    answer EHLO with 502, as a server that only speaks HELO does.
``max_connections``
    None, or how many sessions may be open at once: a connection beyond
    them is greeted ``432 4.3.2 Concurrent connections limit exceeded`` and
    closed, as Exchange Online does.  A session stops counting once it
    said QUIT.  ``turned_away`` counts such connections.
``max_rate``
    None, or how many messages a second the server takes: a MAIL FROM
    beyond that many in the last second gets ``454 4.7.0 Throttling
    failure: Maximum sending rate exceeded``, as Amazon SES answers.
    ``throttled`` counts those replies.
``refuse_helo``
    answer HELO with 554 (with ``refuse_ehlo``: a server refusing to talk).
``greylist(address, seconds)``
    RCPT TO for ``address`` gets ``451 4.7.1 Greylisted, please try again
    later`` until *seconds* after its first attempt, then is accepted, as
    a greylisting server does; ``greylisted[address]`` counts those
    replies.
``max_recipients``
    None, or how many recipients one transaction may have: a RCPT TO
    beyond that many accepted gets ``452 4.5.3 Too many recipients`` (RFC
    5321 4.5.3.1.10), as Postfix's ``smtpd_recipient_limit`` or Exchange
    Online answer; ``capped`` counts those replies.

Hostile relays, which a client must bound itself:

``endless_reply``
    None, or one of :data:`REPLY_POINTS`: the reply there (``'greeting'``,
    a command, or ``'dot'``, the end of DATA) never ends.  The server sends
    continuation lines of the reply's code (``250-endless 1`` ...) as fast
    as the client reads them, until the client hangs up, and then closes
    the connection; the transcript shows one ``S: <endless reply>`` line.
    ``endless_lines`` counts the lines sent.
``trickle``
    None, or bytes a second: the greeting goes out that slowly, a byte at
    a time, so that every read of the client gets something well within
    any timeout, and only a deadline for the whole reply stops the wait.
``refuse_starttls(code, text)``
    answer STARTTLS with that reply (454 4.7.0 TLS not available by
    default) while still offering it in EHLO: build the server with
    ``starttls=True``.  A relay that does not offer STARTTLS at all is the
    default (``starttls=False``), with AUTH offered in clear when
    ``auth`` is given.
"""
import collections
import time

DROP_POINTS = ('connect', 'ehlo', 'mail', 'rcpt', 'data', 'dot', 'quit',
               'rset')
#: Where ``endless_reply`` may play: the greeting, the replies to these
#: commands, and 'dot' (the reply to the end of DATA).
REPLY_POINTS = ('greeting', 'EHLO', 'HELO', 'STARTTLS', 'AUTH', 'MAIL',
                'RCPT', 'DATA', 'dot', 'RSET', 'NOOP', 'QUIT')


def _reply(code, text):
    # Only failures make sense here; a 2xx "fault" would silently pass.
    if not 400 <= int(code) <= 599:
        raise ValueError(f'expected a 4xx or 5xx reply code, got {code!r}')
    return f'{int(code)} {text}'


class _Faults:
    """The fault settings of :class:`SMTPTestServer`; see the module doc."""

    @property
    def drop_at(self):
        return self._drop_at

    @drop_at.setter
    def drop_at(self, point):
        if point is not None and point not in DROP_POINTS:
            raise ValueError(f'drop_at must be None or one of {DROP_POINTS}')
        self._drop_at = point

    @property
    def endless_reply(self):
        return self._endless_reply

    @endless_reply.setter
    def endless_reply(self, point):
        if point is not None and point not in REPLY_POINTS:
            raise ValueError(f'endless_reply must be None or one of'
                             f' {REPLY_POINTS}')
        self._endless_reply = point

    def refuse_starttls(self, code=454,
                        text='4.7.0 TLS not available due to temporary'
                             ' reason'):
        """Answer STARTTLS with this reply until reset."""
        self._starttls_reply = _reply(code, text)

    def refuse(self, address, code=550, text='5.1.1 no such user'):
        """Answer RCPT TO for ``address`` (case-insensitive) with a reply."""
        self._refusals[address.lower()] = _reply(code, text)

    def fail_mail(self, code=550, text='5.7.1 sender rejected'):
        """Answer every MAIL FROM with this reply until reset."""
        self._mail_reply = _reply(code, text)

    def fail_data(self, code=451, text='4.3.0 try again later'):
        """Answer every end of DATA with this reply until reset."""
        self._data_reply = _reply(code, text)

    def greylist(self, address, seconds=60.0):
        """Greylist RCPT TO for ``address`` (case-insensitive) for
        *seconds* from its first attempt."""
        if not seconds >= 0:
            raise ValueError(f'seconds must be >= 0, not {seconds!r}')
        self._greylist[address.lower()] = [float(seconds), None]

    def _reset_faults(self):
        self._refusals, self.local_part_rules = {}, True
        self._mail_reply = self._data_reply = None
        self.drop_at, self.drop_once = None, False
        self.delay, self.stall, self.reject_auth = 0, False, False
        self.max_connections = self.max_rate = None
        self.turned_away = self.throttled = 0
        self._admitted = set()
        self._mail_times = collections.deque()
        self.refuse_ehlo = self.refuse_helo = False
        self.endless_reply = self._starttls_reply = self.trickle = None
        self.endless_lines = 0
        self._greylist, self.greylisted = {}, collections.Counter()
        self.max_recipients, self.capped = None, 0

    # Called from the server thread.

    def _maybe_drop(self, smtp, point):
        if self._drop_at == point:
            if self.drop_once:
                self._drop_at = None
            smtp.drop()

    def _admit(self, smtp):
        """Whether *smtp*, a new connection, may have a session: False
        past ``max_connections``."""
        limit = self.max_connections
        if limit is not None and len(self._admitted) >= limit:
            self.turned_away += 1
            return False
        self._admitted.add(smtp)
        return True

    def _release(self, smtp):
        """*smtp* said QUIT or is gone: its session no longer counts."""
        self._admitted.discard(smtp)

    def _rcpt_reply(self, address, accepted):
        """The reply to RCPT TO for *address* after *accepted* recipients
        of this transaction, or None to accept it."""
        if self.max_recipients is not None and \
                accepted >= self.max_recipients:
            self.capped += 1
            return '452 4.5.3 Too many recipients'
        key = address.lower()
        reply = self._refusals.get(key)
        if reply is None and self.local_part_rules:
            local = key.rpartition('@')[0]
            if local.startswith('tempfail'):
                reply = '451 4.3.0 tempfail@ test address: try again later'
            elif local.startswith('reject'):
                reply = '550 5.1.1 reject@ test address: no such user'
        greylist = self._greylist.get(key)
        if reply is None and greylist is not None:
            now = time.monotonic()
            if greylist[1] is None:
                greylist[1] = now  # the timer starts at the first attempt
            if now - greylist[1] < greylist[0]:
                self.greylisted[key] += 1
                reply = '451 4.7.1 Greylisted, please try again later'
        return reply

    def _rate_reply(self):
        """The reply to a MAIL FROM past ``max_rate``, or None."""
        if self.max_rate is None:
            return None
        now = time.monotonic()
        times = self._mail_times
        while times and times[0] <= now - 1.0:
            times.popleft()
        if len(times) >= self.max_rate:
            self.throttled += 1
            return ('454 4.7.0 Throttling failure: Maximum sending rate'
                    ' exceeded')
        times.append(now)
        return None
