"""Text made safe to show on a terminal or in a log line.

Addresses, message ids, relay replies and whatever was read from a queue
file can hold characters that a terminal or a log viewer acts on instead of
showing: an escape sequence that resets the terminal or hides the text after
it, a backspace or a carriage return that overwrites what came before, a
line break that forges a log line of its own, a bidirectional override that
shows "evil" backwards.  `printable` is the one function that escapes them;
everything that prints such text (``zope-sendmail --list``, the log lines
naming addresses, the texts of refused recipients) goes through it.

A message may have 10 000 recipients; a log line naming each of them is
230 KB long, unreadable, and costly in every log pipeline.  Logs, reasons
and exception texts show the first `SHOWN` and how many more
(``"a@x, b@y, c@z and 9997 more"``, `shortlist`); events and exceptions
keep the whole lists in their attributes for the applications that need
them.
"""


def printable(text):
    """*text* with every character that `str.isprintable` refuses written
    as `repr` writes it, without the quotes: C0 and C1 controls and DEL
    (``\\x1b``, ``\\r``), line and paragraph separators, format
    characters such as bidirectional overrides and zero-width spaces
    (``\\u202e``), spaces other than the ASCII one (``\\xa0``), lone
    surrogates and unassigned code points.  Printable text, in any script,
    comes back unchanged.

    The result is for people to read, not for parsing back: a backslash
    already in *text* is left as it is.
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():
        return text  # the common case, without a copy
    return ''.join(char if char.isprintable() else repr(char)[1:-1]
                   for char in text)


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
