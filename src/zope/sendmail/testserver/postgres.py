"""A throwaway PostgreSQL cluster for tests: `PostgresCluster`.

This module owns the cluster and `postgres_unavailable`, which says why one
cannot run here.  A cluster lives in one temporary directory: its data
(``initdb --no-sync``, trust authentication, user ``postgres``), its log
and its unix socket; the server runs with ``fsync=off`` (a test's data
need not survive a power loss) and listens on no TCP address unless asked
for 127.0.0.1.  PostgreSQL refuses to run as root: as root, ``initdb`` and
``pg_ctl`` run as the unprivileged ``postgres`` user, which then owns the
directory.  `PostgresCluster.stop` removes everything it made; every wait
is bounded (``pg_ctl -t``, subprocess timeouts).
"""
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse


#: Where Debian's postgresql package puts the server programs (not on PATH).
BINDIRS = '/usr/lib/postgresql/*/bin'
#: The database the tests' queues live in.
DATABASE = 'zope_sendmail_test'
#: The unprivileged user the server runs as when we are root.
SERVER_USER = 'postgres'
#: Seconds ``pg_ctl`` may wait for the server to start or stop.
PG_CTL_WAIT = 30


def find_bindir():
    """The directory holding ``initdb`` and ``pg_ctl`` (the newest
    Debian cluster version, or one on PATH), or None."""
    found = []
    for path in glob.glob(BINDIRS):
        version = os.path.basename(os.path.dirname(path))
        if os.path.exists(os.path.join(path, 'initdb')):
            try:
                found.append((int(version.split('.')[0]), path))
            except ValueError:
                continue  # not a version directory: not ours to guess at
    if found:
        return max(found)[1]
    initdb = shutil.which('initdb')
    return os.path.dirname(initdb) if initdb else None


def postgres_unavailable():
    """Why a PostgreSQL cluster cannot run here, or None if it may."""
    if os.environ.get('ZOPE_SENDMAIL_POSTGRES_TESTS', '1') == '0':
        return 'turned off by ZOPE_SENDMAIL_POSTGRES_TESTS=0'
    if importlib.util.find_spec('psycopg') is None:
        return ("psycopg is not installed (pip install"
                " 'zope.sendmail[postgresql]' or the test extra)")
    if find_bindir() is None:
        return ('the PostgreSQL server is not installed (apt-get install'
                ' postgresql, as .ci/run does when root)')
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return (f'PostgreSQL refuses to run as root, and there is no'
                    f' {SERVER_USER!r} user to run it as')
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ClusterError(RuntimeError):
    """The cluster could not be made, started or stopped (the message
    holds what the program said)."""


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, with one database
    (`DATABASE`).

    *tcp*: also listen on 127.0.0.1 (``port``), with short server-side
    keepalives (a client cut off is seen within seconds); else the unix
    socket in ``directory`` only.  *address*: the TCP address to listen on
    instead of 127.0.0.1, and *netns*: the network namespace the server
    runs in (``ip netns`` name), for tests whose clients are other
    "hosts"; the unix socket is reachable from every namespace.  *clients*:
    networks (CIDR) whose hosts may connect over TCP, trusted as 127.0.0.1
    is.  *settings* are more ``-c NAME=VALUE`` server settings.
    """

    user = SERVER_USER  # the database superuser the URLs connect as

    def __init__(self, tcp=False, settings=None, bindir=None,
                 address='127.0.0.1', netns=None, clients=()):
        self.tcp = tcp
        self.address = address
        self.netns = netns
        self.clients = tuple(clients)
        self.settings = dict(settings or {})
        self.bindir = bindir or find_bindir()
        self.directory = None
        self.port = None
        self.running = False
        self._run_as = SERVER_USER if os.geteuid() == 0 else None

    def __repr__(self):
        state = 'running' if self.running else 'stopped'
        return f'<PostgresCluster {state} {self.directory}>'

    @property
    def data(self):
        return os.path.join(self.directory, 'data')

    @property
    def logfile(self):
        return os.path.join(self.directory, 'server.log')

    def _program(self, *args, timeout=PG_CTL_WAIT + 30):
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        try:
            done = subprocess.run(
                command, cwd=self.directory, user=self._run_as,
                group=self._run_as, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            raise ClusterError(f'{args[0]}: {e}') from None
        if done.returncode:
            output = done.stdout.decode('utf-8', 'replace').strip()
            raise ClusterError(f'{args[0]} failed ({done.returncode}):'
                               f' {output[-2000:]}')
        return done.stdout

    def create(self):
        """Make the directory and the cluster, start the server and create
        the database; return self.  What fails is undone."""
        self.directory = tempfile.mkdtemp(prefix='zope.sendmail-pg-')
        try:
            if self._run_as is not None:
                entry = pwd.getpwnam(self._run_as)
                os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            self.port = free_port() if self.tcp else 5432
            self._program('initdb', '-D', self.data, '-A', 'trust',
                          '-U', self.user, '-E', 'UTF8', '--locale=C',
                          '--no-sync')
            if self.clients:
                with open(os.path.join(self.data, 'pg_hba.conf'), 'a') as f:
                    f.writelines(f'host all all {network} trust\n'
                                 for network in self.clients)
            self.start()
            self.execute(f'CREATE DATABASE {DATABASE}', dbname='postgres')
        except BaseException:
            self.remove()
            raise
        return self

    def _options(self):
        settings = {
            'listen_addresses': f"'{self.address}'" if self.tcp else "''",
            'port': str(self.port),
            'unix_socket_directories': f"'{self.directory}'",
            'fsync': 'off',
            'full_page_writes': 'off',
            'max_connections': '200',
        }
        if self.tcp:
            settings.update(tcp_keepalives_idle='2',
                            tcp_keepalives_interval='1',
                            tcp_keepalives_count='3')
        settings.update(self.settings)
        return ' '.join(f'-c {name}={value}'
                        for name, value in settings.items())

    def start(self):
        """Start the server; wait (bounded) until it accepts connections."""
        def start():
            self._program('pg_ctl', '-D', self.data, '-l', self.logfile,
                          '-o', self._options(), '-w', '-t',
                          str(PG_CTL_WAIT), 'start')
        if self.netns is None:
            start()
        else:
            # pg_ctl's child, the server, stays in the namespace of the
            # thread that started it.
            from zope.sendmail.testserver.netns import inside
            inside(self.netns, start)
        self.running = True

    def stop(self, mode='fast'):
        """Stop the server: ``fast`` (clients are disconnected, a clean
        shutdown) or ``immediate`` (as a crash: recovery at the next
        start)."""
        self.running = False
        self._program('pg_ctl', '-D', self.data, '-m', mode, '-w',
                      '-t', str(PG_CTL_WAIT), 'stop')

    def restart(self, mode='immediate'):
        """Stop the server (a crash by default) and start it again."""
        self.stop(mode)
        self.start()

    def remove(self):
        """Stop the server if it runs, and remove the directory."""
        if self.directory is None:
            return
        try:
            if self.running or os.path.exists(
                    os.path.join(self.data, 'postmaster.pid')):
                self.stop('immediate')
        except ClusterError:
            # Removing the directory is still worth doing; a server left
            # running without it exits at its next checkpoint.
            pass
        finally:
            shutil.rmtree(self.directory, True)
            self.directory = None

    def url(self, queue=None, dbname=DATABASE, **params):
        """A ``postgresql:`` URL of the database (over the unix socket, or
        the TCP address with *tcp*), with ``?queue=`` when *queue* is given and
        other query *params*."""
        query = {'host': self.address if self.tcp else self.directory,
                 'port': str(self.port)}
        query.update(params)
        if queue is not None:
            query['queue'] = queue
        return (f'postgresql://{self.user}@/{dbname}?'
                + urllib.parse.urlencode(query, safe='/'))

    def connect(self, dbname=DATABASE, **kwargs):
        """A psycopg connection (autocommit) to *dbname*."""
        import psycopg
        return psycopg.connect(host=self.directory, port=self.port,
                               user=self.user, dbname=dbname,
                               autocommit=True, connect_timeout=10, **kwargs)

    def execute(self, sql, params=None, dbname=DATABASE):
        """Run *sql* (with *params*) in a connection of its own; return the
        rows it returns (a list of tuples), or None."""
        with self.connect(dbname) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else None
