"""Watching a queue from outside: what monitoring systems read.

`facts` reads a queue's status (`IQueueStore.status`), bounded in time, as
the facts a script reads (``zope-sendmail --status --json``); `check`
judges them against thresholds as a monitoring plugin in the Nagios
convention (``zope-sendmail --check``); `metrics` counts what queue
processors do and shows the queues, for Prometheus (the optional extra
``zope.sendmail[metrics]``), and `exposition` serves them over HTTP or
writes them for node_exporter's textfile collector.
"""
