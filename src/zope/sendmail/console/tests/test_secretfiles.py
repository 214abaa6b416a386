"""A password in an INI file, or a password file, that its group or others
may read gets a warning naming the file and the fix; real files, and the
zope-sendmail program in-process and in a process of its own."""
import os
import subprocess
import sys
import unittest

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.console import PASSWORD
from zope.sendmail.tests.support.console import ConsoleTestBase


class ExposureTests(unittest.TestCase):

    def _callFUT(self, mode, path='/etc/zope mail.ini'):
        from zope.sendmail.console.secretfiles import exposure
        status = os.stat_result((0o100000 | mode,) + (0,) * 9)
        return exposure(path, status, 'holds a password')

    @unittest.skipUnless(os.name == 'posix', 'POSIX file modes')
    def test_modes(self):
        self.assertIsNone(self._callFUT(0o600))
        self.assertIsNone(self._callFUT(0o700))
        self.assertIsNone(self._callFUT(0o620))  # writable is another story
        self.assertEqual(
            self._callFUT(0o644),
            "'/etc/zope mail.ini' holds a password and is readable by its"
            " group and others (mode 0644): anyone who can read it has the"
            " password; let only its owner read it: chmod 600"
            " '/etc/zope mail.ini'")
        self.assertIn('readable by its group (mode 0640)',
                      self._callFUT(0o640))
        self.assertIn('readable by others (mode 0604)', self._callFUT(0o604))


@unittest.skipUnless(os.name == 'posix', 'POSIX file modes')
class ProgramTests(ConsoleTestBase):

    def _warnings(self, *args, **kw):
        status, output, app = self._run(*args, **kw)
        self.assertEqual(status, 0, output)
        self.assertNotIn(PASSWORD, output)
        return [line.split(' WARNING zope.sendmail.console.program: ', 1)[1]
                for line in output.splitlines() if ' WARNING ' in line]

    def _file(self, name, text, mode):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_ini_file_holding_a_password(self):
        ini = self._file('zs.ini', f'[app:zope-sendmail]\nusername = u\n'
                                   f'password = {PASSWORD}\n', 0o644)
        self.assertEqual(self._warnings('--config', ini, self.queue), [
            f"{ini!r} holds a password and is readable by its group and"
            f" others (mode 0644): anyone who can read it has the password;"
            f" let only its owner read it: chmod 600 {ini}"])
        # Whatever the program is asked to do.
        self.assertEqual(len(self._warnings('--config', ini, '--status',
                                            self.queue)), 1)
        os.chmod(ini, 0o640)
        [warning] = self._warnings('--config', ini, self.queue)
        self.assertIn('readable by its group (mode 0640)', warning)
        os.chmod(ini, 0o600)
        self.assertEqual(self._warnings('--config', ini, self.queue), [])

    def test_a_password_from_the_default_section_counts(self):
        ini = self._file('zs.ini', f'[DEFAULT]\npassword = {PASSWORD}\n'
                                   f'[app:zope-sendmail]\nusername = u\n',
                         0o644)
        [warning] = self._warnings('--config', ini, self.queue)
        self.assertIn('holds a password', warning)

    def test_no_password_no_warning(self):
        for text in ('hostname = relay.example.com\n',
                     'password =\n'):  # empty: the default, none
            ini = self._file('zs.ini', '[app:zope-sendmail]\n' + text, 0o644)
            self.assertEqual(self._warnings('--config', ini, self.queue), [])

    def test_standard_input_is_not_a_file(self):
        self.assertEqual(self._warnings(
            '--config', '-', self.queue,
            stdin=f'[app:zope-sendmail]\nusername = u\npassword = {PASSWORD}'
                  f'\n'), [])

    def test_password_file(self):
        path = self._file('password', PASSWORD + '\n', 0o644)
        [warning] = self._warnings('--username', 'u', '--password-file',
                                   path, self.queue)
        self.assertEqual(
            warning,
            f"{path!r} is the password file and is readable by its group"
            f" and others (mode 0644): anyone who can read it has the"
            f" password; let only its owner read it: chmod 600 {path}")
        os.chmod(path, 0o600)
        self.assertEqual(self._warnings('--username', 'u', '--password-file',
                                        path, self.queue), [])
        # Named in the INI file, which holds no password itself.
        ini = self._file('zs.ini', f'[app:zope-sendmail]\nusername = u\n'
                                   f'password_file = {path}\n', 0o644)
        os.chmod(path, 0o604)
        [warning] = self._warnings('--config', ini, self.queue)
        self.assertIn(f'{path!r} is the password file and is readable by'
                      f' others (mode 0604)', warning)

    def test_in_a_process_of_its_own(self):
        ini = self._file('zs.ini', f'[app:zope-sendmail]\nusername = u\n'
                                   f'password = {PASSWORD}\n', 0o644)
        done = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console', '--config', ini,
             '--status', self.queue], env=child_env(),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        stderr = done.stderr.decode()
        self.assertEqual(done.returncode, 0, stderr)
        [line] = stderr.splitlines()
        self.assertRegex(line, r' WARNING zope.sendmail.console.program:'
                               r' .*zs.ini'
                               r"' holds a password and is readable by its"
                               r' group and others \(mode 0644\)')
        self.assertNotIn(PASSWORD, stderr)
