"""One active processor for a queue shared over a network file system.

A processor sends from a shared queue only while it holds its lease, the
file ``.processor-lease`` in the queue directory: ``key: value`` lines
naming the holder (host, boot id, pid namespace, pid), a random token, a
serial and the time of the last renewal.  Locks play no part (on NFS they
prove nothing); the file is written through a temporary file and a
``link`` (to create it, failing if present) or a ``rename`` (to renew it).

- The holder renews it every *renew* seconds.  It starts a message only
  while its last successful renewal *started* less than V = (*timeout* -
  *margin*) / 2 seconds ago, measured on its own CLOCK_BOOTTIME: cut off
  from the file server, it stops sending by itself (self-fencing).
- A standby takes the lease over when it has seen the file's content
  unchanged for *timeout* seconds on its own clock (no clock sync needed),
  when the file is absent, or at once when its holder is provably dead (it
  ran under this very kernel and pid namespace, and its pid is gone).  Of
  several standbys, the one that creates ``.processor-lease.taken-<hash
  of the content>`` exclusively takes over; the others wait again.

Why V = (T - M) / 2: a renewal that hangs (a hard NFS mount) and lands
after a standby took over can only have started within V of the last one
that landed, so the holder's validity ends before T - M after the last
renewal the standby saw; M is left for a message in flight.
"""
import hashlib
import logging
import os
import secrets
import threading
import time

from zope.interface import implementer

from zope.sendmail.interfaces import IProcessorLease
from zope.sendmail.stores.maildir.leasefile import LEASE
from zope.sendmail.stores.maildir.leasefile import check_settings
from zope.sendmail.stores.maildir.leasefile import clock
from zope.sendmail.stores.maildir.leasefile import identity
from zope.sendmail.stores.maildir.leasefile import parse
from zope.sendmail.stores.maildir.leasefile import read_bytes
from zope.sendmail.stores.maildir.privatefiles import create_private


log = logging.getLogger(__name__)

MARKER_AGE = 24 * 60 * 60  # a takeover marker outlives any slow standby


@implementer(IProcessorLease)
class ProcessorLease:
    """The lease of the queue at *queue_path*; see `IProcessorLease`."""

    def __init__(self, queue_path, timeout=120.0, renew=10.0, margin=20.0,
                 clock=clock, me=None):
        check_settings(timeout, renew, margin)
        self.queue_path = queue_path
        self.path = os.path.join(queue_path, LEASE)
        self.timeout, self.renew, self.margin = timeout, renew, margin
        self.validity = (timeout - margin) / 2
        self.clock = clock
        self.me = me or identity()
        self.token = secrets.token_hex(16)
        self.on_acquire = None  # called (no argument) when acquired
        self.seen_renewal = False  # a standby saw a live holder renew
        self._serial = 0
        self._renewed_at = None  # clock at the start of the last renewal
        self._observed = None    # (content, clock when first seen)
        self._standby_logged = False
        self._trouble = None  # the last error looking at the file
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread = None

    def __repr__(self):
        state = 'held' if self.held else 'standby'
        return f'<ProcessorLease {state} {self.path!r}>'

    @property
    def held(self):
        return self._renewed_at is not None

    def may_send(self):
        at = self._renewed_at
        return at is not None and self.clock() - at < self.validity

    def _content(self):
        self._serial += 1
        fields = dict(self.me, token=self.token, serial=self._serial,
                      renewed=f'{time.time():.3f}',
                      timeout=f'{self.timeout:g}')
        return ''.join(f'{k}: {v}\n' for k, v in fields.items()).encode()

    def _tmp(self):
        tmp = f'{self.path}.tmp-{self.token}'
        fd = create_private(tmp)  # never through what lies at that name
        try:
            os.write(fd, self._content())
        finally:
            os.close(fd)
        return tmp

    def _get(self):
        return read_bytes(self.path)  # a link, a FIFO: OSError, trouble

    def _holder(self, fields):
        return f'{fields.get("host", "?")} pid {fields.get("pid", "?")}'

    def acquire(self):
        with self._lock:
            if self.may_send():
                return True
            if self.held:
                self._lose(f'could not renew the processor lease for'
                           f' {self.clock() - self._renewed_at:.0f} s')
            try:
                result, self._trouble = self._acquire(), None
                return result
            except OSError as e:
                # The file server may come back: stay a standby meanwhile,
                # saying so once per kind of trouble, not at every look.
                if str(e) != self._trouble:
                    self._trouble = str(e)
                    log.warning('queue %s: cannot look at the processor'
                                ' lease: %s', self.queue_path, e)
                return False

    def _acquire(self):
        start = self.clock()
        data = self._get()
        if data is None:
            tmp = self._tmp()
            try:
                os.link(tmp, self.path)
                created = True
            except FileExistsError:
                # NFS may answer a retransmitted link that succeeded so.
                created = os.stat(tmp).st_nlink == 2
            finally:
                os.unlink(tmp)
            if created:
                return self._won(start, 'queue %s: processor lease acquired'
                                 ' (host %s, pid %s)', self.queue_path,
                                 self.me['host'], self.me['pid'])
            data = self._get()
            if data is None:
                return False
        fields = parse(data)
        now = self.clock()
        if self._observed is None or self._observed[0] != data:
            self.seen_renewal = self._observed is not None
            self._observed = (data, now)
            if not self._standby_logged:
                self._standby_logged = True
                log.info('queue %s: processor lease held by %s; waiting as'
                         ' a standby (takeover after %g s without renewal)',
                         self.queue_path, self._holder(fields), self.timeout)
            if not self._dead(fields):
                return False
        else:
            try:
                bound = max(self.timeout, float(fields.get('timeout', 0)))
            except ValueError:
                bound = self.timeout  # garbled: our own bound
            # Judged by the time before the read that saw it unchanged.
            if start - self._observed[1] < bound:
                return False
        return self._take_over(data, fields, start - self._observed[1], start)

    def _dead(self, fields):
        """Whether the holder is provably dead: it ran under this very
        kernel (same boot id: host names may collide, cloned VMs share
        them) and pid namespace, and its pid is gone.  A holder from
        before a reboot is not: another host may have the same name."""
        if not self.me['boot_id'] or fields.get('token') == self.token or \
                [fields.get(k) for k in ('host', 'boot_id', 'pidns')] != \
                [self.me[k] for k in ('host', 'boot_id', 'pidns')]:
            return False
        try:
            os.kill(int(fields.get('pid', '')), 0)
        except ProcessLookupError:
            return True
        except (ValueError, OSError):
            return False  # garbled, or alive (EPERM: another user's)
        return False

    def _take_over(self, data, fields, age, start):
        marker = f'{self.path}.taken-' + hashlib.sha256(data).hexdigest()[:16]
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600))
        except FileExistsError:
            self._observed = None  # another standby took this one over
            return False
        if self._get() != data:
            return False  # renewed meanwhile: its holder is alive
        os.rename(self._tmp(), self.path)
        self._remove_old_markers()
        return self._won(start, 'queue %s: took over the processor lease of'
                         ' %s (not renewed for %.0f s)', self.queue_path,
                         self._holder(fields), age, level=logging.WARNING)

    def _won(self, start, *message, level=logging.INFO):
        self._renewed_at = start
        self._observed = None
        self._standby_logged = self.seen_renewal = False
        log.log(level, *message)
        if self.on_acquire is not None:
            self.on_acquire()
        return True

    def _remove_old_markers(self):
        prefix = LEASE + '.taken-'
        for entry in os.scandir(self.queue_path):
            try:
                if entry.name.startswith(prefix) and time.time() - \
                        entry.stat(follow_symlinks=False).st_mtime > \
                        MARKER_AGE:
                    os.unlink(entry.path)
            except OSError:
                continue  # removed by another holder: the goal is reached

    def _lose(self, why):
        self._renewed_at = None
        self._observed = None
        log.error('queue %s: %s; stopped sending, waiting as a standby',
                  self.queue_path, why)

    def renew_once(self):
        """Renew the lease now if held; return whether it still is."""
        with self._lock:
            if not self.held:
                return False
            start = self.clock()
            if not self.may_send():
                self._lose(f'could not renew the processor lease for'
                           f' {start - self._renewed_at:.0f} s')
                return False
            try:
                data = self._get()
                fields = parse(data or b'')
                if fields.get('token') != self.token:
                    self._lose('lost the processor lease to ' + (
                        self._holder(fields) if data else 'nobody (removed)'))
                    return False
                os.rename(self._tmp(), self.path)
            except OSError as e:
                # Retried at the next beat; may_send fences meanwhile.
                log.warning('queue %s: cannot renew the processor lease:'
                            ' %s', self.queue_path, e)
                return True
            self._renewed_at = start
            return True

    def start(self):
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, daemon=True,
                name=f'zope.sendmail lease {self.queue_path}')
            self._thread.start()

    def _run(self):
        while not self._stopping.wait(self.renew if self.held
                                      else min(self.renew, 1.0)):
            try:
                if self.held:
                    self.renew_once()
                else:
                    self.acquire()
            except Exception:
                # The heartbeat must outlive a surprise; may_send fences.
                log.exception('queue %s: processor lease heartbeat failed',
                              self.queue_path)

    def stop(self, timeout=None):
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            if not self.may_send():
                self._renewed_at = None
                return
            self._renewed_at = None
            try:
                if parse(self._get() or b'').get('token') == self.token:
                    os.unlink(self.path)
                    log.info('queue %s: processor lease released',
                             self.queue_path)
            except OSError as e:
                # A standby takes over after the timeout instead.
                log.warning('queue %s: cannot release the processor lease:'
                            ' %s', self.queue_path, e)
