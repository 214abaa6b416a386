"""Opening the files of a queue directory without trusting them.

Whoever may write into a queue directory may put anything there: a FIFO,
whose ``open`` waits for a writer that never comes; a symbolic link to a
secret or to ``/dev/zero``; a device, a socket, a directory.  Every file of
a queue that is read -- messages, claim files, retry and reason files, the
processor lease -- is opened by `open_regular`: looked at with ``lstat``
first, so that nothing but a regular file is ever opened, then opened
without following a symbolic link (``O_NOFOLLOW``) nor waiting
(``O_NONBLOCK``), and checked again with ``fstat``, since the entry may
have been swapped in between.  Reads come from that very descriptor,
bounded by the size ``fstat`` gave.  Anything else raises
`NotRegularFileError`, which says what the entry is, never what it holds.
Files are removed by name with `remove`, and one that may have been
replaced meanwhile only while `owns` says it is still the one meant.
"""
import errno
import os
import stat


# Absent where the platform lacks them (Windows has neither O_NOFOLLOW nor
# O_NONBLOCK; the lstat and fstat checks remain).
OPEN_FLAGS = (getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0)
              | getattr(os, 'O_NOCTTY', 0) | getattr(os, 'O_CLOEXEC', 0))

_KINDS = ((stat.S_ISLNK, 'a symbolic link'), (stat.S_ISFIFO, 'a FIFO'),
          (stat.S_ISDIR, 'a directory'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))


class NotRegularFileError(OSError):
    """A queue entry that is not a regular file: never opened, never read.

    ``kind`` says what it is (``'a FIFO'``, ``'a symbolic link'``...);
    the message quotes the path with ``repr()``, as a hostile name may
    hold control characters.
    """

    def __init__(self, path, kind):
        super().__init__(f'{path!r} is {kind}, not a regular file')
        self.path = path
        self.kind = kind


def kind_of(mode):
    """What an entry of *mode* (``st_mode``) is, for a message."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return 'not a regular file' if not stat.S_ISREG(mode) else 'a file'


def identity(st):
    """The (device, inode) of a stat result: which file it is."""
    return st.st_dev, st.st_ino


def owns(path, identity_):
    """Whether the entry at *path* is still the file of *identity_* (what
    `identity` gave), looked at without following a link."""
    try:
        return identity(os.lstat(path)) == identity_
    except FileNotFoundError:
        return False


def remove(path):
    """Remove the entry *path*, never what a link leads to; one that is
    gone already (removed by a cleaner, an operator, another processor)
    is the goal reached."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # the goal is reached


def open_regular(path, flags=os.O_RDONLY):
    """Open the regular file *path*; return ``(fd, stat)``, the stat from
    ``fstat`` of the descriptor.  Raise `NotRegularFileError` for anything
    else, ``FileNotFoundError`` when it is gone, as ``os.open`` would."""
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFileError(path, kind_of(before.st_mode))
    try:
        fd = os.open(path, flags | OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:  # swapped for a link since the lstat
            raise NotRegularFileError(path, 'a symbolic link') from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(path, kind_of(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_fd(fd, size):
    """Read at most *size* bytes of the open file *fd*, from its start:
    less if it shrank meanwhile, never more if it grew."""
    os.lseek(fd, 0, os.SEEK_SET)
    # A regular file is read in one call (no copy to join the pieces);
    # the loop is for the short reads the system may give.
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b''.join(chunks)


def read_regular(path, limit=None):
    """The contents of the regular file *path*, at most *limit* bytes
    (all of it by default, as ``fstat`` measured it)."""
    fd, st = open_regular(path)
    try:
        return read_fd(fd, st.st_size if limit is None
                       else min(st.st_size, limit))
    finally:
        os.close(fd)
