"""A drain in a fresh process, for bench_queue.py (`_helpers.drain_in_child`
starts it): ``drain_child.py PATH PORT N [tracemalloc]`` drains the N
messages queued at PATH into the SMTP sink at PORT with a fresh
`QueueProcessorThread` (defaults: 8 connections, 100 messages each), one
`process_once` after the other, and prints one JSON line: seconds, messages
sent, the peak RSS before and after (see `peak_rss_kb`), the warnings
logged, and with ``tracemalloc`` the Python heap's peak.
"""
import json
import logging
import sys
import tracemalloc

# Started by path: its directory is on sys.path already; bin/py's own path
# comes in PYTHONPATH (_helpers.child_env).
from _helpers import drain


def peak_rss_kb():
    """The process's peak RSS: VmHWM, which /proc/self/clear_refs resets;
    ru_maxrss elsewhere.  (On Linux ru_maxrss is at least the peak of the
    memory the process had before exec: the parent's, when spawned.)"""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(path, port, expected, trace):
    # Imported before measuring.
    import zope.sendmail.processing.thread  # noqa: F401
    import zope.sendmail.smtp.mailer  # noqa: F401
    errors = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = errors.append
    logging.getLogger('zope.sendmail').addHandler(handler)
    try:
        # Resets the peak RSS (VmHWM) to the current RSS (Linux).
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
    rss_before = peak_rss_kb()
    if trace:
        tracemalloc.start()
    seconds, sent = drain(path, int(port), int(expected))
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    print(json.dumps({
        'seconds': seconds, 'sent': sent, 'rss_before_kb': rss_before,
        'rss_kb': peak_rss_kb(), 'heap_peak': peak, 'errors': len(errors)}),
        flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:4], 'tracemalloc' in sys.argv[4:])
