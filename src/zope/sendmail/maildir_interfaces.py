"""The contracts of the queue's storage: a Maildir folder and its writers.

`zope.sendmail.maildir` implements them; a `QueuedMailDelivery` writes
messages through an `IMaildirMessageWriter`, queue processors read what the
`IMaildir` lists.  `zope.sendmail.interfaces` exports them too, where 7.3
had them.  A queue processor reports the lasting oddities of a queue's
entries (a FIFO in ``new/``, a claim file it cannot open) through an
`INotices`, once each.
"""
from zope.interface import Interface


class UnsafeQueueError(ValueError):
    """A queue directory that others than its owner could tamper with:
    its ``new/``, ``cur/`` or ``tmp/`` is a symbolic link, or it or one of
    them is writable by every user, or by its group (unless the queue is
    opened with *shared_group*).  The message names the directory, says
    why and what to do; nothing in the queue was touched."""


class IMaildirFactory(Interface):
    def __call__(dirname, create=False, shared_group=False):
        """Return an `IMaildir` for the directory *dirname*.

        A path that is not a Maildir raises ``ValueError`` naming it.  With
        *create*, a missing or empty directory becomes one; a regular file
        or a directory holding other files is still refused.  A queue that
        others could tamper with raises `UnsafeQueueError` (a
        ``ValueError``); *shared_group* accepts one writable by its group
        (a group of users sharing the queue), never one writable by every
        user.  A queue owned by another user is used, with one warning.
        Factories of 7.3's kind, without *shared_group*, are called
        without it.
        """


class IMaildir(Interface):
    """A Maildir folder: ``tmp/`` for messages being written, ``new/`` and
    ``cur/`` for delivered ones.  Names starting with a dot are not messages.
    """

    def __iter__():
        """Iterate over the paths of the messages in ``new/`` and ``cur/``."""

    def newMessage():
        """Return an `IMaildirMessageWriter` for a new message, visible to
        readers only once the writer commits."""


class IMaildirMessageWriter(Interface):
    """A message being written into a Maildir's ``tmp/``, created
    exclusively with mode 0600 under a name unique across hosts."""

    def write(data):
        """Write *data* (bytes; text is encoded as UTF-8)."""

    def writelines(lines):
        """Write each of *lines*, as ``write`` does."""

    def close():
        """End the writing; the file stays in ``tmp/`` (its descriptor may
        be kept until ``commit`` or ``abort``, for the commit's check)."""

    def commit():
        """Close the file if needed and move it into ``new/``; after
        ``abort``, raise ``RuntimeError``.  What is moved into ``new/`` must
        be the file written, never one put in its place meanwhile."""

    def abort():
        """Close the file if needed and remove it; harmless when called
        twice or after ``commit`` (which it does not undo)."""


class INotices(Interface):
    """Lasting conditions of a queue's entries, each logged once.

    A queue processor keeps one across its passes: its listing of the due
    messages and its claims report through it what they skip (an entry
    that is not a regular file, a claim file that cannot be opened), so
    that such a condition costs one log line, not one per pass.
    """

    def once(path, topic, level, message, *args):
        """Log *message* % *args* at *level* (a ``logging`` level) unless
        it was logged for the entry *path* and *topic* already; return
        whether it was logged now."""

    def retain(paths):
        """Forget what was logged about entries not among *paths* (the
        listing of the queue): a condition that comes back is logged
        again, and the memory holds only what is odd now."""
