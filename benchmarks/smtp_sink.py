"""A fast SMTP sink for the benchmarks: accepts every message, keeps none.

Run as a separate process by bench_delivery.py, so that the server does not
compete with the client for the GIL.  It listens on 127.0.0.1 on a free
port, prints ``PORT <number>`` on stdout once it accepts connections, and
exits on EOF on stdin or on SIGTERM, printing ``RECEIVED <count>`` (the
number of messages accepted) just before it exits.

Uses aiosmtpd's SMTP protocol class directly on an asyncio server (rather
than its Controller thread) so that port 0 can be used and the process has
a single thread doing the work.
"""
import asyncio
import signal
import sys
import threading

from aiosmtpd.smtp import SMTP


class SinkHandler:
    received = 0

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return '250 OK'


def main():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = SinkHandler()
    # A fixed host name: the default calls socket.getfqdn() per connection.
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname='sink.localhost'), '127.0.0.1', 0))
    port = server.sockets[0].getsockname()[1]
    loop.add_signal_handler(signal.SIGTERM, loop.stop)

    def wait_for_eof():
        sys.stdin.read()
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print(f'PORT {port}', flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        print(f'RECEIVED {handler.received}', flush=True)


if __name__ == '__main__':
    main()
