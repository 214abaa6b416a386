"""The files a queue processor writes beside the messages, all private.

`write_atomically` writes its bookkeeping (``.retry-X``, ``.reason-X``)
through a temporary file and a rename; `write_private` writes a message
rewritten for the recipients left to retry into the queue's ``tmp/``, with
the Maildir writer, which checks at its commit that what it moves is what
it wrote.  Both create their files exclusively with mode 0600, so that
neither a umask nor a file left by a crash makes them readable by other
users, and neither renames a file put in the place of its own.
"""
import errno
import os
import threading

from zope.sendmail.stores.maildir.writer import new_message
from zope.sendmail.stores.maildir.names import TMP
from zope.sendmail.stores.maildir.safefiles import identity
from zope.sendmail.stores.maildir.safefiles import remove


_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)  # not on Windows


def create_private(path):
    """Create the file *path* afresh, exclusively with mode 0600, and
    return its descriptor (open for writing).  A file of that name (left
    by a crash of this process's pid and thread, whose mode and owner are
    not to be trusted, or a link put there) is removed first, never
    written through."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileExistsError:
        remove(path)
        return os.open(path, flags, 0o600)


def write_private(queue, data, final_path):
    """Write *data* to a new file of the queue's ``tmp/``, created
    exclusively with mode 0600; return its `MaildirMessageWriter`, still
    open, whose ``commit`` moves it to *final_path*."""
    writer = new_message(queue, final_path)
    try:
        writer.write(data)
    except BaseException:
        writer.abort()
        raise
    return writer


def _lidentity(path):
    try:
        return identity(os.lstat(path))
    except FileNotFoundError:
        return None


def write_atomically(path, data, sync=False):
    """Write *data* to *path* through a temporary file and a rename, so a
    reader never sees half of it.  Raise OSError if another file was put
    in the place of the temporary one: it is not renamed (or, if it was
    in the instant before the rename, it is removed again)."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f'{TMP}{os.getpid()}-'
                                  f'{threading.get_ident()}-{name}')
    fd = create_private(tmp)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
        # The descriptor stays open until the rename is checked, so that
        # its inode cannot be reused by a file put in its place.
        mine = identity(os.fstat(fd))
        if _lidentity(tmp) != mine:
            raise OSError(errno.ESTALE, f'{tmp} was replaced by another'
                                        f' file before its rename')
        try:
            # replace, not rename: the same on POSIX, and Windows's rename
            # refuses an existing target (a .retry-X written again).
            os.replace(tmp, path)
        except OSError:
            remove(tmp)
            raise
        if _lidentity(path) != mine:
            # Bookkeeping only: a missing file is a fresh start, one of
            # another's making would be shown to the operator as ours.
            remove(path)
            raise OSError(errno.ESTALE, f'{tmp} was replaced by another'
                                        f' file during its rename')
    finally:
        os.close(fd)
