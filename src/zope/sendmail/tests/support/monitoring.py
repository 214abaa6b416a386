"""For the tests of monitoring a queue: `queue_message` puts a message
of a given age into a Maildir queue, `SilentServer` is a TCP server that
never answers (a hung database), `parse` reads an exposition text of
Prometheus metrics back."""
import os
import socket
import threading
import time


def queue_message(queue, age, name='msg', sub='new'):
    """A message in the Maildir *queue*, queued *age* seconds ago (the
    creation time that starts every Maildir name, as 7.3's writer names
    them)."""
    stamp = int(time.time() - age)
    path = os.path.join(queue, sub, f'{stamp}.M1P1Q{name}.testhost')
    with open(path, 'wb') as f:
        f.write(b'X-Zope-From: sender@example.com\n'
                b'X-Zope-To: rcpt@example.com\n'
                b'Subject: aged\r\n\r\nbody\r\n')
    return path


def make_queue(directory, messages=0):
    """A Maildir queue ``queue`` in *directory* holding *messages*
    messages, a minute apart in age."""
    path = os.path.join(directory, 'queue')
    for sub in ('tmp', 'new', 'cur'):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for n in range(messages):
        queue_message(path, 60 * (n + 1), f'm{n}')
    return path


def parse(text):
    """{(name, labels as a sorted tuple): value} of an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never says a
    word: a database (or anything) that hangs.  ``start``, then ``port``;
    ``stop(timeout)`` closes it all, and waits for the status readers a
    check gave up on, which then see their connection closed."""

    def start(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True,
                                       name='silent server')
        self.thread.start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by stop
            self.accepted.append(conn)

    def stop(self, timeout=5):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.sock.close()
        self.thread.join(timeout)
        for conn in self.accepted:
            conn.close()
        for thread in threading.enumerate():
            if thread.name == 'zope.sendmail status reader':
                thread.join(timeout)
