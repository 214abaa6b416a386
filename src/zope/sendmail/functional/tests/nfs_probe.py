"""Lock probes run inside the NFS layer's guests (standard library only).

``nfs_probe.py hold PATH MARKER`` takes an exclusive flock on PATH
(blocking), then creates MARKER and holds the lock until killed, checking
every 0.5 s that the descriptor still works and printing (JSON, one line
per event) when it stops working.  ``nfs_probe.py take PATH MARKER
TIMEOUT`` tries a non-blocking flock on PATH every 0.2 s, creates MARKER
after its first failed try, and prints (JSON) the result of the first try
and the time.time() it got the lock (None after TIMEOUT s).  Used by
test_nfs_layer.py, which reads the output from the guest's directory.
"""
import fcntl
import json
import os
import sys
import time


def say(**event):
    print(json.dumps(dict(event, at=time.time())), flush=True)


def hold(path, marker):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    say(event='locked')
    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o600))
    while True:
        time.sleep(0.5)
        try:
            os.pwrite(fd, b'x', 0)
            os.fsync(fd)
        except OSError as e:
            say(event='lost', error=e.errno)
            return


def take(path, marker, timeout):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    first, deadline = None, time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if first is None:
                first = 'busy'
                os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o600))
            time.sleep(0.2)
            continue
        say(event='acquired', first=first or 'free')
        return
    say(event='timeout', first=first)


if __name__ == '__main__':
    {'hold': hold, 'take': take}[sys.argv[1]](*sys.argv[2:])
