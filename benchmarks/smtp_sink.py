"""A fast SMTP sink for the benchmarks: accepts every message, keeps none.

Run as a script (``smtp_sink.py [DELAY [CONNECTIONS [RATE]]]``), it
listens on 127.0.0.1 on a free port and prints ``PORT <number>`` on stdout
once it accepts connections.  With a DELAY (seconds) it waits that long
before every reply, like a relay far away.  With CONNECTIONS it greets a
connection beyond that many sessions (those that did not say QUIT yet)
``432 4.3.2`` and closes it, as Exchange Online does; with RATE it answers
a MAIL FROM beyond RATE in the last second ``454 4.7.0 Throttling
failure``, as Amazon SES does ("-" for none).  A ``REPORT`` line on stdin
makes it print, as JSON, each Message-Id received since the last report
with its count and the ``time.time()`` of its first arrival, and the
connections accepted, turned away and throttled MAILs.  It exits on EOF
on stdin or on SIGTERM, printing ``RECEIVED <count>`` (messages accepted)
last.  It uses
aiosmtpd's SMTP protocol on a plain asyncio server rather than its
Controller thread: port 0 works, and one thread does all the work.

`_helpers.SinkProcess` starts it as a separate process, so that the server
does not compete with the benchmark for the GIL.
"""
import json
import re
import sys
import threading
import time


MESSAGE_ID = re.compile(rb'^message-id:[ \t]*<([^>\r\n]*)>', re.I | re.M)


class SinkHandler:
    """Counts the messages, and each Message-Id with its first arrival;
    plays the limits of a relay (*max_connections*, *max_rate*)."""

    def __init__(self, max_connections=None, max_rate=None):
        self.received = 0
        self.seen, self.noid = {}, 0
        self.max_connections, self.max_rate = max_connections, max_rate
        self.sessions, self.mails = set(), []
        self.counts = dict(connections=0, turned_away=0, throttled=0)

    def admit(self, server):
        self.counts['connections'] += 1
        if self.max_connections is not None and \
                len(self.sessions) >= self.max_connections:
            self.counts['turned_away'] += 1
            return False
        self.sessions.add(server)
        return True

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.max_rate is not None:
            now = time.monotonic()
            self.mails = [t for t in self.mails if t > now - 1.0]
            if len(self.mails) >= self.max_rate:
                self.counts['throttled'] += 1
                return ('454 4.7.0 Throttling failure: Maximum sending rate'
                        ' exceeded')
            self.mails.append(now)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return '250 OK'

    async def handle_QUIT(self, server, session, envelope):
        self.sessions.discard(server)
        return '221 Bye'

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
        print(json.dumps({'ids': self.seen, 'noid': self.noid,
                          'counts': self.counts}), flush=True)
        self.seen, self.noid = {}, 0
        self.counts = dict.fromkeys(self.counts, 0)


def main(delay=0.0, max_connections=None, max_rate=None):
    import asyncio
    import signal

    from aiosmtpd.smtp import SMTP

    class SlowSMTP(SMTP):
        async def push(self, status):
            # Once per reply, not per line of a multi-line one ('250-...').
            if delay and status[3:4] not in ('-', b'-'):
                await asyncio.sleep(delay)
            await super().push(status)

        async def _handle_client(self):
            if not handler.admit(self):
                await self.push('432 4.3.2 Concurrent connections limit'
                                ' exceeded')
                self.transport.close()
                return
            await super()._handle_client()

        def connection_lost(self, error):
            handler.sessions.discard(self)
            super().connection_lost(error)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = SinkHandler(max_connections, max_rate)
    factory = SlowSMTP if delay > 0 or max_connections or max_rate \
        else SMTP
    if factory is SMTP:
        handler.counts['connections'] = None  # not counted: no overhead
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


if __name__ == '__main__':
    args = sys.argv[1:] + ['0', '-', '-']
    main(float(args[0]), None if args[1] == '-' else int(args[1]),
         None if args[2] == '-' else float(args[2]))
