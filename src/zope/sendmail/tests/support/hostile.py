"""Hostile queue files: `SECRET`, which a file read where it must not be
would show, and `in_thread`, which bounds a call that a FIFO opened by
mistake would block for ever."""
import threading


SECRET = 'SECRET-FIRST-LINE-4242'


def in_thread(function, timeout=10):
    """Run *function* in a thread; its result, or a failure when it does
    not return within *timeout* seconds (a FIFO opened would block)."""
    outcome = []

    def run():
        try:
            outcome.append(('ok', function()))
        except BaseException as e:
            outcome.append(('error', e))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f'{function} did not return in {timeout} s')
    kind, value = outcome[0]
    if kind == 'error':
        raise value
    return value
