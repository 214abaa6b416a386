"""zope.sendmail 7.3's readers of INI values, for code that calls them.

7.3's ``zope-sendmail`` read its INI file with two public helpers of its
``queue`` module, ``boolean`` and ``string_or_none``, which code of its
users imports from there (`zope.sendmail.queue` re-exports them).  They
keep 7.3's lenient meaning.  The program itself no longer uses them: it
reads a boolean exactly, and refuses one it does not know
(`zope.sendmail.options.parse_bool`), so that a typo is not taken for a
setting.
"""


def boolean(value):
    """*value*, as text, read as 7.3 read a boolean setting: true when it
    starts with ``t``, ``y`` or ``1`` in any case (``true``, ``Yes``,
    ``1``, and also ``tomato``), false otherwise (``on`` included)."""
    return str(value).lower()[:1] in ('t', 'y', '1')


def string_or_none(value):
    """*value*, or None when it is the text ``None`` (7.3's INI spelling
    of an unset username, password or queue path)."""
    return None if value == 'None' else value
