"""The contracts of the queue's storage: a Maildir folder and its writers.

`zope.sendmail.maildir` implements them; a `QueuedMailDelivery` writes
messages through an `IMaildirMessageWriter`, queue processors read what the
`IMaildir` lists.  `zope.sendmail.interfaces` exports them too, where 7.3
had them.
"""
from zope.interface import Interface


class IMaildirFactory(Interface):
    def __call__(dirname, create=False):
        """Return an `IMaildir` for the directory *dirname*.

        A path that is not a Maildir raises ``ValueError`` naming it.  With
        *create*, a missing or empty directory becomes one; a regular file
        or a directory holding other files is still refused.
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
        """Close the file; it stays in ``tmp/``."""

    def commit():
        """Close the file if needed and move it into ``new/``; after
        ``abort``, raise ``RuntimeError``."""

    def abort():
        """Close the file if needed and remove it; harmless when called
        twice or after ``commit`` (which it does not undo)."""
