"""A fast SMTP sink for the benchmarks: accepts every message, keeps none.

Run as a script (``smtp_sink.py [DELAY]``), it listens on 127.0.0.1 on a
free port and prints ``PORT <number>`` on stdout once it accepts
connections.  With a DELAY (seconds) it waits that long before every reply,
like a relay far away.  A ``REPORT`` line on stdin makes it print, as JSON,
each Message-Id received since the last report with its count and the
``time.time()`` of its first arrival.  It exits on EOF on stdin or on
SIGTERM, printing ``RECEIVED <count>`` (messages accepted) last.  It uses
aiosmtpd's SMTP protocol on a plain asyncio server rather than its
Controller thread: port 0 works, and one thread does all the work.

`SinkProcess` starts it as a separate process, so that the server does not
compete with the benchmark for the GIL.
"""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time


MESSAGE_ID = re.compile(rb'^message-id:[ \t]*<([^>\r\n]*)>', re.I | re.M)


class SinkHandler:
    """Counts the messages, and each Message-Id with its first arrival."""

    def __init__(self):
        self.received = 0
        self.seen, self.noid = {}, 0

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        self.received += 1
        match = MESSAGE_ID.search(envelope.content[:4096])
        if match is None:
            self.noid += 1
        else:
            entry = self.seen.setdefault(match.group(1).decode(), [0, now])
            entry[0] += 1
        return '250 OK'

    def report(self):
        print(json.dumps({'ids': self.seen, 'noid': self.noid}), flush=True)
        self.seen, self.noid = {}, 0


def main(delay=0.0):
    import asyncio
    import signal

    from aiosmtpd.smtp import SMTP

    class SlowSMTP(SMTP):
        async def push(self, status):
            # Once per reply, not per line of a multi-line one ('250-...').
            if status[3:4] not in ('-', b'-'):
                await asyncio.sleep(delay)
            await super().push(status)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = SinkHandler()
    factory = SlowSMTP if delay > 0 else SMTP
    # A fixed host name: the default calls socket.getfqdn() per connection.
    server = loop.run_until_complete(loop.create_server(
        lambda: factory(handler, hostname='sink.localhost'), '127.0.0.1', 0))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)

    def read_commands():
        for line in sys.stdin:
            if line.strip() == 'REPORT':
                loop.call_soon_threadsafe(handler.report)
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=read_commands, daemon=True).start()
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

    def __init__(self, delay=0.0, timeout=20):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(delay)],
            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=child_env())
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

    def report(self, timeout=30):
        """({message id: [times received, time.time() of the first]},
        number of messages without an id) since the last report."""
        self.proc.stdin.write('REPORT\n')
        self.proc.stdin.flush()
        line = self._next(timeout)
        if not line.startswith('{'):
            raise RuntimeError(f'the SMTP sink did not report: {line!r}')
        data = json.loads(line)
        return data['ids'], data['noid']

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
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
