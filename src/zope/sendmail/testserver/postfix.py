"""A real Postfix relay, run from a temporary directory, as a test layer.

This module owns `PostfixLayer` and its `PostfixServer`: one Postfix
instance (``postfix -c DIR start``) on 127.0.0.1 and an unused port, with
STARTTLS (a certificate from `.certs`, verifiable against ``ca_file``)
and SMTPUTF8, delivering mail for any domain into one sink Maildir, refusing
``reject@...`` for good (550) and ``tempfail@...`` for now (451); and
`postfix_unavailable`, which says why it cannot run here (it needs root and
the installed package).  Configuration, queues, log and sink live in one
temporary directory, removed once every process of the instance is gone;
outside it Postfix only reads its installed files (programs, and
``postfix-files`` and ``dynamicmaps.cf`` in /etc/postfix).
"""
import contextlib
import email
import email.policy
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from zope.sendmail.testserver import certs


POSTFIX = '/usr/sbin/postfix'
MYHOSTNAME = 'mx.test.local'
#: The uid/gid the sink belongs to; deliberately no account, so that no
#: real user owns the mail.  (Postfix refuses to deliver as root.)
SINK_UID = 5000
#: Recipient address patterns (Postfix regexp) and the replies they get.
REFUSALS = (('/^reject@/', '550 5.1.1 no such user'),
            ('/^tempfail@/', '451 4.3.0 try again later'))

# Only the services needed to receive, queue and deliver into a virtual
# Maildir (no SMTP client: nothing leaves), none chrooted: a chroot would
# need copies of /etc files in the queue directory.
_SERVICES = '''\
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
error     unix - - n - - error
retry     unix - - n - - error
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
postlog   unix-dgram n - n - 1 postlogd
'''


def postfix_unavailable():
    """Why a Postfix layer cannot run on this machine, or None if it can."""
    if not os.path.exists(POSTFIX):
        return ('Postfix is not installed (apt-get install postfix,'
                ' as .ci/run does when root)')
    if os.geteuid() != 0:
        return (f'Postfix must be started as root, and these tests run'
                f' as uid {os.geteuid()}')
    return None  # it can


def postfix_available():
    return postfix_unavailable() is None


def _wait(condition, timeout, interval=0.02):
    """Poll *condition* until it is true (return True) or *timeout* s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class PostfixServer:
    """One Postfix instance living in its own temporary directory."""

    host = '127.0.0.1'
    port = directory = None

    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    @property
    def maildir(self):
        return self.path('mail', 'sink')

    def start(self):
        self.directory = tempfile.mkdtemp(prefix='zope.sendmail-postfix-')
        self.config = self.path('etc')
        try:
            # Postfix's unprivileged processes and the sink's owner must
            # be able to reach their directories inside it.
            os.chmod(self.directory, 0o755)
            os.makedirs(self.path('etc', 'tls'), mode=0o700)
            os.makedirs(self.maildir)
            # The rest of the queue is created by postfix check/start.
            os.mkdir(self.path('spool'))
            for sub in ('', 'sink'):
                os.chown(self.path('mail', sub), SINK_UID, SINK_UID)
            self.ca_file, cert, key = certs.write(self.path('etc', 'tls'))
            self._write_config(cert, key)
            # Another process may take the port between our probe and
            # Postfix's bind; then Postfix fails to start: try another.
            for attempt in (1, 2, 3):
                with socket.socket() as probe:
                    probe.bind((self.host, 0))
                    self.port = probe.getsockname()[1]
                self._write('master.cf', f'{self.host}:{self.port} inet'
                            f' n - n - - smtpd\n' + _SERVICES)
                if self._run('start', check=attempt == 3):
                    break
            if not _wait(self._listening, 10):
                raise RuntimeError(f'Postfix does not listen on port'
                                   f' {self.port}:\n{self.log()}')
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self, cert, key):
        self._write('rcpt_access', ''.join(
            f'{pattern} {reply}\n' for pattern, reply in REFUSALS))
        self._write('main.cf', f'''\
compatibility_level = 3.6
queue_directory = {self.path('spool')}
data_directory = {self.path('data')}
maillog_file = {self.path('postfix.log')}
maillog_file_prefixes = {self.directory}
myhostname = {MYHOSTNAME}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local: no look-ups in /etc/aliases or the passwd database.
alias_maps =
alias_database =
local_recipient_maps =
# No DNS: the sandbox may have none, and a lookup would only add latency.
smtpd_peername_lookup = no
# Any domain, any recipient: into the one Maildir.
virtual_mailbox_domains = static:any
virtual_mailbox_maps = static:sink/
virtual_mailbox_base = {self.path('mail')}
virtual_uid_maps = static:{SINK_UID}
virtual_gid_maps = static:{SINK_UID}
smtpd_recipient_restrictions = check_recipient_access
 regexp:{self.config}/rcpt_access, permit_mynetworks, reject_unauth_destination
smtpd_tls_chain_files = {key}, {cert}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtputf8_enable = yes
''')

    def _write(self, name, text):
        with open(os.path.join(self.config, name), 'w') as f:
            f.write(text)

    def _run(self, command, check=True, timeout=60):
        """Run ``postfix -c DIR command``; return whether it succeeded.
        With *check*, a failure raises instead, with the log."""
        args = [POSTFIX, '-c', self.config, command]
        try:
            done = subprocess.run(args, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f'{args} took over {timeout} s') from e
        if done.returncode == 0 or not check:
            return done.returncode == 0
        raise RuntimeError(f'{args} failed ({done.returncode}):\n'
                           f'{done.stdout}{done.stderr}\n{self.log()}')

    def _listening(self):
        # The greeting, not just the connection (the master accepts it),
        # shows that smtpd can run with this configuration.
        try:
            with socket.create_connection((self.host, self.port), 2) as s:
                greeting = s.recv(512)
                s.sendall(b'QUIT\r\n')
                return greeting.startswith(b'220 ')
        except OSError:
            return False

    def log(self):
        """Postfix's log so far (for failure messages)."""
        try:
            with open(self.path('postfix.log'), errors='replace') as f:
                return f.read()
        except (OSError, TypeError):
            return ''

    def processes(self):
        """The pids of this instance's processes: those whose environment
        names its config directory (all Postfix processes inherit it)."""
        marker = b'MAIL_CONFIG=%s\0' % os.fsencode(self.config)
        pids = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            with contextlib.suppress(OSError):  # gone meanwhile
                with open(f'/proc/{pid}/environ', 'rb') as f:
                    if marker in f.read():
                        pids.append(int(pid))
        return pids

    def stop(self):
        """Stop Postfix, wait for all its processes, remove the directory."""
        if self.directory is None:
            return
        # After a failed start there may be no master, but processes.
        if os.path.exists(self.path('spool', 'pid', 'master.pid')):
            self._run('stop', check=False)
        if not _wait(lambda: not self.processes(), 10):
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _wait(lambda: not self.processes(), 5)
        left = self.processes()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        if left:
            raise RuntimeError(f'Postfix processes {left} survived SIGKILL')

    def _files(self, sub):
        with contextlib.suppress(FileNotFoundError):  # before 1st delivery
            entries = list(os.scandir(os.path.join(self.maildir, sub)))
            entries.sort(key=lambda e: (e.stat().st_mtime, e.name))
            return [e.path for e in entries]
        return []

    def reset(self):
        """Forget the delivered mail."""
        for sub in ('new', 'cur'):
            for path in self._files(sub):
                os.unlink(path)

    def delivered(self, raw=False):
        """The messages in the sink, oldest first: `email.message.
        EmailMessage` objects, or their bytes when *raw*."""
        data = [pathlib.Path(path).read_bytes()
                for path in self._files('new') + self._files('cur')]
        return data if raw else [email.message_from_bytes(
            d, policy=email.policy.default) for d in data]

    def queued(self):
        """How many messages Postfix has accepted but not delivered:
        those in its own queues."""
        return sum(len(files) for queue in
                   ('maildrop', 'incoming', 'active', 'deferred', 'hold')
                   for _, _, files in os.walk(self.path('spool', queue)))

    def wait_for(self, n, timeout=10, raw=False):
        """Wait until *n* messages are delivered and Postfix's queue is
        empty (so no more are on the way); return `delivered`.  Raises
        AssertionError after *timeout* seconds."""
        def done():
            return len(self._files('new')) >= n and not self.queued()
        if not _wait(done, timeout):
            raise AssertionError(
                f'{len(self._files("new"))} message(s) delivered and'
                f' {self.queued()} still in Postfix\'s queue after'
                f' {timeout} s, expected {n}; log:\n{self.log()}')
        return self.delivered(raw)


class PostfixLayer:
    """zope.testrunner layer running one `PostfixServer` (``server``),
    whose sink is emptied around every test.  Between setUp and tearDown
    it has the server's ``host``, ``port``, ``maildir``, ``ca_file``,
    ``delivered()`` and ``wait_for()``.  Tests must be skipped, and given
    no layer, when `postfix_unavailable` says why it cannot run."""

    _EXPOSED = ('host', 'port', 'maildir', 'ca_file', 'delivered',
                'wait_for')
    server = host = port = maildir = ca_file = delivered = wait_for = None

    @classmethod
    def setUp(cls):
        cls.server = PostfixServer().start()
        for name in cls._EXPOSED:
            setattr(cls, name, getattr(cls.server, name))

    @classmethod
    def tearDown(cls):
        server, cls.server = cls.server, None
        for name in cls._EXPOSED:
            setattr(cls, name, None)
        if server is not None:
            server.stop()

    @classmethod
    def testSetUp(cls):
        cls.server.reset()

    testTearDown = testSetUp
