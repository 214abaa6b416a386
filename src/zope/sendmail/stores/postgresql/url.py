"""The URL of a queue on PostgreSQL: `is_queue_url` and `QueueURL`.

A queue on PostgreSQL is named by libpq's URL (``postgresql://user@host:port
/db``, ``postgresql:///db?host=/run/postgresql``,
``postgresql://?service=name``) with parameters of our own: ``queue=NAME``
names one of several queues sharing a database (``default`` when absent).
libpq refuses parameters it does not know, so ours are removed before
connecting (`QueueURL.conninfo`).  A password may be in the URL: it is for
psycopg only, and never shows in what this module gives for logs, reprs and
registries (`QueueURL.masked`, `QueueURL.key`, ``str()``).  No psycopg here:
the chooser of stores imports this module whatever the queue.
"""
import urllib.parse

from zope.sendmail.interfaces import QueueError


SCHEMES = ('postgresql', 'postgres')
#: Our own query parameters, removed before connecting.
OWN_PARAMS = ('queue',)
DEFAULT_QUEUE = 'default'
#: A queue name is a NOTIFY payload and a column value: short and printable.
MAX_QUEUE_NAME = 200
MASK = '***'
# Parameters that say how to connect, not where: not part of a queue's key.
_NOT_IN_KEY = frozenset((
    'password', 'connect_timeout', 'application_name', 'keepalives',
    'keepalives_idle', 'keepalives_interval', 'keepalives_count',
    'tcp_user_timeout', 'options', 'sslmode', 'sslcert', 'sslkey',
    'sslrootcert', 'sslpassword', 'passfile', 'target_session_attrs'))


def is_queue_url(text):
    """Whether *text* (a queue as a user gave it) names a queue on
    PostgreSQL: text starting with ``postgresql:`` or ``postgres:``."""
    if not isinstance(text, str):
        return False
    scheme, colon, rest = text.partition(':')
    return bool(colon) and scheme.strip().lower() in SCHEMES


class QueueURLError(QueueError, ValueError):
    """A ``postgresql:`` URL that cannot name a queue; the message never
    holds the password."""


def _quote(text):
    return urllib.parse.quote(text, safe='')


class QueueURL:
    """A queue's URL, parsed once; see the module.

    ``queue`` is the queue's name, ``conninfo`` the URL psycopg connects
    with (password and all), ``masked`` the URL for log lines (password as
    ``***``), ``key`` what names the queue within this host (no password,
    parameters sorted, the queue's name last).
    """

    def __init__(self, text):
        if not is_queue_url(text):
            raise QueueURLError('a PostgreSQL queue URL starts with'
                                ' postgresql: or postgres:')
        text = text.strip()
        if not text.partition(':')[2].startswith('//'):
            # libpq reads only postgresql://...; 'postgresql:db' would be
            # taken as a host name, 'postgresql:/x' as a database '/x'.
            raise QueueURLError('a PostgreSQL queue URL starts with'
                                ' postgresql:// (postgresql:///db for a'
                                ' local database)')
        try:
            parts = urllib.parse.urlsplit(text)
        except ValueError as e:
            raise QueueURLError(f'not a PostgreSQL URL: {e}') from None
        if parts.fragment:
            raise QueueURLError('a PostgreSQL queue URL has no #fragment')
        self._scheme = parts.scheme.lower()
        user, password, hosts = self._split_netloc(parts.netloc)
        self._user, self._password, self._hosts = user, password, hosts
        self._path = parts.path
        try:
            params = urllib.parse.parse_qsl(parts.query,
                                            keep_blank_values=True,
                                            strict_parsing=bool(parts.query))
        except ValueError:
            raise QueueURLError('the query of a PostgreSQL queue URL must be'
                                ' name=value pairs joined by &') from None
        own = {}
        self._params = []
        for name, value in params:
            if name in OWN_PARAMS:
                if name in own:
                    raise QueueURLError(f'{name}= is given twice')
                own[name] = value
            else:
                self._params.append((name, value))
        self._queue_given = 'queue' in own
        self.queue = own.get('queue', DEFAULT_QUEUE)
        if not self.queue or len(self.queue) > MAX_QUEUE_NAME or \
                not self.queue.isprintable():
            raise QueueURLError(f'a queue name is 1 to {MAX_QUEUE_NAME}'
                                f' printable characters')

    @staticmethod
    def _split_netloc(netloc):
        userinfo, at, hosts = netloc.rpartition('@')
        if not at:
            return None, None, hosts
        user, colon, password = userinfo.partition(':')
        return (urllib.parse.unquote(user),
                urllib.parse.unquote(password) if colon else None, hosts)

    def _netloc(self, password):
        if self._user is None and password is None:
            return self._hosts
        userinfo = _quote(self._user or '')
        if password is not None:
            userinfo += ':' + password
        return f'{userinfo}@{self._hosts}'

    def _url(self, password, params, path=None):
        # Not urlunsplit: it drops the // of an empty host, which libpq
        # needs (postgresql://?service=name).
        query = urllib.parse.urlencode(params, safe='/*')
        url = f'postgresql://{self._netloc(password)}{path or self._path}'
        return f'{url}?{query}' if query else url

    def _masked_params(self):
        return [(n, MASK if n == 'password' else v) for n, v in self._params]

    @property
    def has_password(self):
        return self._password is not None or any(
            n == 'password' for n, v in self._params)

    @property
    def conninfo(self):
        """The URL as libpq takes it: without our own parameters."""
        password = None if self._password is None else _quote(self._password)
        return self._url(password, self._params)

    @property
    def masked(self):
        """The URL as logs show it: any password as ``***``, our own
        parameters kept."""
        password = None if self._password is None else MASK
        params = self._masked_params()
        if self._queue_given:
            params = params + [('queue', self.queue)]
        return self._url(password, params)

    @property
    def key(self):
        """The queue's name within this host: where it is (no password,
        nothing that only says how to connect, parameters sorted) and its
        name."""
        params = sorted((n, v) for n, v in self._params
                        if n not in _NOT_IN_KEY)
        hosts = self._hosts.lower()
        netloc = f'{_quote(self._user)}@{hosts}' if self._user else hosts
        query = urllib.parse.urlencode(params + [('queue', self.queue)],
                                       safe='/')
        return f'postgresql://{netloc}{self._path or "/"}?{query}'

    def __str__(self):
        return self.masked

    def __repr__(self):
        return f'<QueueURL {self.masked}>'

    def __eq__(self, other):
        if not isinstance(other, QueueURL):
            return NotImplemented
        return self.key == other.key

    def __hash__(self):
        return hash(self.key)
