"""Tests of the queue URL: what is a PostgreSQL queue, what psycopg is
given, and that no password ever shows."""
import subprocess
import sys
import unittest


class IsQueueURLTests(unittest.TestCase):

    def _callFUT(self, text):
        from zope.sendmail.stores.postgresql.url import is_queue_url
        return is_queue_url(text)

    def test_schemes(self):
        for text in ('postgresql://host/db', 'postgres://host/db',
                     'postgresql:///db?host=/run/postgresql',
                     'PostgreSQL://?service=mail', 'postgres:'):
            self.assertTrue(self._callFUT(text), text)

    def test_paths_and_others(self):
        for text in ('/var/spool/mail', 'queue', 'postgresql', 'C:\\queue',
                     'mysql://host/db', 'file:///tmp', b'postgresql://x',
                     None, './postgresql:/x'):
            self.assertFalse(self._callFUT(text), text)


class QueueURLTests(unittest.TestCase):

    def _makeOne(self, text):
        from zope.sendmail.stores.postgresql.url import QueueURL
        return QueueURL(text)

    def test_queue_name_and_conninfo(self):
        url = self._makeOne('postgresql://bob@db.example:5433/mail'
                            '?sslmode=require&queue=shop')
        self.assertEqual(url.queue, 'shop')
        self.assertEqual(url.conninfo,
                         'postgresql://bob@db.example:5433/mail'
                         '?sslmode=require')
        self.assertEqual(url.masked,
                         'postgresql://bob@db.example:5433/mail'
                         '?sslmode=require&queue=shop')

    def test_default_queue(self):
        url = self._makeOne('postgres:///mail?host=/run/postgresql')
        self.assertEqual(url.queue, 'default')
        self.assertEqual(url.conninfo,
                         'postgresql:///mail?host=/run/postgresql')
        self.assertTrue(url.key.endswith('&queue=default'), url.key)

    def test_service_name_keeps_its_empty_host(self):
        url = self._makeOne('postgresql://?service=mail&queue=q')
        self.assertEqual(url.conninfo, 'postgresql://?service=mail')

    def test_password_in_the_url_never_shows(self):
        url = self._makeOne('postgresql://bob:s%40cr%3Aet@db/mail?queue=q')
        self.assertEqual(url.conninfo, 'postgresql://bob:s%40cr%3Aet@db/mail')
        shown = [url.masked, url.key, str(url), repr(url)]
        for text in shown:
            self.assertNotIn('s%40cr', text)
            self.assertNotIn('s@cr', text)
        self.assertEqual(url.masked, 'postgresql://bob:***@db/mail?queue=q')
        self.assertEqual(url.key, 'postgresql://bob@db/mail?queue=q')
        self.assertTrue(url.has_password)

    def test_password_parameter_never_shows(self):
        url = self._makeOne('postgresql:///mail?password=secret&host=/x')
        self.assertIn('password=secret', url.conninfo)
        for text in (url.masked, url.key, str(url), repr(url)):
            self.assertNotIn('secret', text)
        self.assertIn('password=***', url.masked)

    def test_key_is_the_same_for_the_same_queue(self):
        one = self._makeOne('postgresql://bob:x@DB:5432/mail?queue=q'
                            '&connect_timeout=3&sslmode=require')
        two = self._makeOne('postgres://bob:y@db:5432/mail?sslmode=prefer'
                            '&queue=q')
        self.assertEqual(one.key, two.key)
        self.assertEqual(one, two)
        self.assertEqual(len({one, two}), 1)
        other = self._makeOne('postgresql://bob@db:5432/mail?queue=r')
        self.assertNotEqual(one.key, other.key)

    def test_refused(self):
        from zope.sendmail.interfaces import QueueError
        for text in ('/var/spool', 'postgresql://h/db?queue=',
                     'postgresql://h/db?queue=a&queue=b',
                     'postgresql://h/db?queue=a%0Ab',
                     'postgresql://h/db?queue=' + 'x' * 201,
                     'postgresql://h/db#frag',
                     'postgresql://h/db?novalue',
                     'postgresql:db', 'postgres:/tmp/x', 'postgresql:'):
            with self.assertRaises(QueueError, msg=text):
                self._makeOne(text)

    def test_refusal_never_shows_the_password(self):
        from zope.sendmail.interfaces import QueueError
        with self.assertRaises(QueueError) as caught:
            self._makeOne('postgresql://bob:hunter2@h/db?queue=')
        self.assertNotIn('hunter2', str(caught.exception))

    def test_no_psycopg_is_imported(self):
        # The chooser imports this module whatever the queue.
        code = ('import sys\n'
                'from zope.sendmail.stores.postgresql import url\n'
                'import zope.sendmail.stores.postgresql\n'
                'print("psycopg" in sys.modules)\n')
        from zope.sendmail.tests.support import child_env
        out = subprocess.run([sys.executable, '-c', code], env=child_env(),
                             capture_output=True, timeout=60, check=True)
        self.assertEqual(out.stdout, b'False\n')
