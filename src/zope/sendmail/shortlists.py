"""Long lists in one line of text: the first few items and a count.

A message may have 10 000 recipients; a log line naming each of them is
230 KB long, unreadable, and costly in every log pipeline.  Logs, reasons
and exception texts show the first `SHOWN` and how many more
(``"a@x, b@y, c@z and 9997 more"``); events and exceptions keep the whole
lists in their attributes for the applications that need them.
"""

#: Items a line of text shows before "and N more".
SHOWN = 3


def shortlist(items, shown=SHOWN, separator=', '):
    """*items* (strings) joined by *separator*, the first *shown* of
    them and how many more; all of them when *shown* is None."""
    items = list(items)
    more = len(items) - shown if shown is not None else 0
    if more <= 0:
        return separator.join(items)
    return separator.join(items[:shown]) + f' and {more} more'
