"""A fast SMTP sink for the benchmarks: accepts every message, keeps none.

Run as a script, it listens on 127.0.0.1 on a free port, prints ``PORT
<number>`` on stdout once it accepts connections, and exits on EOF on stdin
or on SIGTERM, printing ``RECEIVED <count>`` (messages accepted) last.  It
uses aiosmtpd's SMTP protocol on a plain asyncio server rather than its
Controller thread: port 0 works, and one thread does all the work.

`SinkProcess` starts it as a separate process, so that the server does not
compete with the benchmark for the GIL.
"""
import os
import queue
import subprocess
import sys
import threading


class SinkHandler:
    received = 0

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return '250 OK'


def main():
    import asyncio
    import signal

    from aiosmtpd.smtp import SMTP

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = SinkHandler()
    # A fixed host name: the default calls socket.getfqdn() per connection.
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname='sink.localhost'), '127.0.0.1', 0))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)

    def wait_for_eof():
        sys.stdin.read()
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print(f'PORT {server.sockets[0].getsockname()[1]}', flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        print(f'RECEIVED {handler.received}', flush=True)


def child_env():
    """The environment for a child: our sys.path, so that it imports what
    we do (bin/py sets its path in the script, not in the environment)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in sys.path if p))


class SinkProcess:
    """This script run in a child process; every wait is bounded."""

    def __init__(self, timeout=20):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)], text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env())
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self._next(timeout)
        if not line.startswith('PORT '):
            self.stop()
            raise RuntimeError(f'the SMTP sink did not start: {line!r}')
        self.port = int(line.split()[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put('')

    def _next(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return ''

    def stop(self):
        """Stop the sink; return how many messages it received, or None."""
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        line = self._next(2)
        return int(line.split()[1]) if line.startswith('RECEIVED ') else None


if __name__ == '__main__':
    main()
