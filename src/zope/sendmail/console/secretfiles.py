"""Files holding a secret: whether others than their owner can read them.

This module owns `exposure`, the warning the ``zope-sendmail`` program
gives when the INI file holding a password, or its password file, is
readable by its group or by others: everyone who can read the file has
the password.  The program still runs -- a file shared with a group on
purpose keeps working -- but says so, naming the file and the fix.  It
also reads the password file (`read_password_file`).
"""
import os
import shlex
import stat


def exposure(path, status, what):
    """The warning for the file *path*, whose `os.stat_result` (of the file
    as it was read) is *status* and which holds *what* (``'holds a
    password'``), when its group or others may read it; else None, and
    always None where files have no POSIX modes."""
    if os.name != 'posix':
        return None
    mode = stat.S_IMODE(status.st_mode)
    readers = [who for who, bit in (('its group', stat.S_IRGRP),
                                    ('others', stat.S_IROTH))
               if mode & bit]
    if not readers:
        return None
    return (f'{path!r} {what} and is readable by {" and ".join(readers)}'
            f' (mode {mode:04o}): anyone who can read it has the password;'
            f' let only its owner read it: chmod 600 {shlex.quote(path)}')


def read_password_file(path):
    """``(password, warning or None)`` of the first line of the file
    *path*; a ValueError saying what is wrong, never showing the file's
    content."""
    try:
        with open(path, encoding='utf-8') as f:
            status = os.fstat(f.fileno())  # of the file that is read
            password = f.readline().rstrip('\r\n')
    except OSError as e:
        raise ValueError(f'cannot read the password file {path!r}:'
                         f' {e.strerror}') from None
    except UnicodeDecodeError:
        raise ValueError(f'the password file {path!r} is not UTF-8'
                         f' text') from None
    if not password:
        raise ValueError(f'the password file {path!r} is empty')
    return password, exposure(path, status, 'is the password file')
