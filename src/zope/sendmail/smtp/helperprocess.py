"""Running a helper program within bounds.

This module owns `run_helper`, which runs a program the site configured
(an OAuth 2.0 token command) and collects what it prints, never trusting
it to behave: without a shell, in a session -- a process group -- of its
own, reading at most `LIMIT` bytes of each of its outputs, for at most a
timeout.  Past either bound the whole group is killed, grandchildren
included.  Once the helper has exited, its outputs get a short `GRACE` to
reach their end; a process it left behind that still holds them open past
that is killed with the group, and what was read is the answer.  Processes
it left behind that let go of its outputs -- a daemon, which detaches --
are left alone: the helper started them on purpose.
"""
import os
import signal
import subprocess
import threading
import time


#: Bytes a helper may print on each of its outputs.
LIMIT = 64 * 1024
#: Seconds its outputs have to reach their end once it has exited.
GRACE = 0.5
#: Seconds between two looks at whether it has exited.
POLL = 0.02

# waitid(WNOWAIT) sees the exit without reaping: the helper's process id,
# which is its group's id, cannot be given to another process before the
# group is killed.  Where it is missing, poll() reaps, and killpg aims at a
# group id that is free again -- for the short time a leftover is waited.
_WAITID = hasattr(os, 'waitid') and hasattr(os, 'WNOWAIT')


class OutputLimitExceeded(subprocess.SubprocessError):
    """The helper printed more than *limit* bytes on its *stream*
    (``'output'`` or ``'error'``)."""

    def __init__(self, cmd, limit, stream):
        size = f'{limit // 1024} KB' if limit % 1024 == 0 else \
            f'{limit} bytes'
        super().__init__(f'printed more than {size} on its standard'
                         f' {stream}')
        self.cmd, self.limit, self.stream = cmd, limit, stream


def run_helper(argv, timeout, limit=LIMIT, grace=GRACE):
    """Run *argv* with no input; return its `subprocess.CompletedProcess`
    (``stdout`` and ``stderr`` as bytes).

    Raises `subprocess.TimeoutExpired` when it has not exited after
    *timeout* seconds, `OutputLimitExceeded` as soon as it prints more
    than *limit* bytes on either output (its group killed in both cases),
    and OSError when it cannot be started.
    """
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True)
    try:
        return _collect(process, argv, timeout, limit, grace)
    except BaseException:
        # A bound passed, or the caller was interrupted: nothing of the
        # helper's may outlive the call.
        _kill_group(process)
        raise
    finally:
        try:
            process.wait(grace)  # reaped, unless stuck in the kernel
        except subprocess.TimeoutExpired:
            pass  # Popen reaps it later; nothing more to do about it


def _collect(process, argv, timeout, limit, grace):
    overflow = threading.Event()
    outputs = {'output': bytearray(), 'error': bytearray()}
    # One thread per pipe (selectors cannot wait on pipes everywhere); each
    # closes its pipe itself when done, so that a descriptor a reader
    # still waits on is never closed and reused under it.
    readers = [threading.Thread(
        target=_read, args=(pipe, outputs[stream], limit, overflow),
        name=f'zope.sendmail helper {stream}', daemon=True)
        for pipe, stream in ((process.stdout, 'output'),
                             (process.stderr, 'error'))]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not _exited(process):
            _check(outputs, argv, limit)
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(argv, timeout)
            overflow.wait(min(left, POLL))
    except BaseException:
        # A bound passed: the group dies now, and its readers, which end
        # with its pipes, are waited for (briefly) rather than left behind.
        _kill_group(process)
        for reader in readers:
            reader.join(grace)
        raise
    end = time.monotonic() + grace
    for reader in readers:
        reader.join(max(0.0, end - time.monotonic()))
    if any(reader.is_alive() for reader in readers):
        # Something it left in its group holds its output open: it would
        # keep us waiting for nothing; the answer is what was printed.
        _kill_group(process)
        for reader in readers:
            # Killed, they let go at once; one that had left the group
            # keeps its reader waiting, a daemon thread, not us.
            reader.join(grace)
    _check(outputs, argv, limit)
    returncode = process.wait()
    return subprocess.CompletedProcess(argv, returncode,
                                       bytes(outputs['output']),
                                       bytes(outputs['error']))


def _check(outputs, argv, limit):
    for stream, data in outputs.items():
        if len(data) > limit:
            raise OutputLimitExceeded(argv, limit, stream)


def _read(pipe, data, limit, overflow):
    """Read *pipe* into *data* until its end or past *limit* bytes."""
    with pipe:
        fd = pipe.fileno()
        while len(data) <= limit:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return  # a broken pipe ends the output as its end does
            if not chunk:
                return
            data += chunk
    overflow.set()


def _exited(process):
    if _WAITID:
        try:
            return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG
                             | os.WNOWAIT) is not None
        except ChildProcessError:
            pass  # reaped already (an application's SIGCHLD handler)
    return process.poll() is not None


def _kill_group(process):
    """Kill the helper's process group (only the helper, without groups)."""
    if hasattr(os, 'killpg'):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            # Gone already (no member left; some systems say EPERM for a
            # group whose only member is a zombie): nothing to kill.
            pass
    else:
        process.kill()
