"""``zope-sendmail --check`` and ``--status --json`` on real queues: a
Maildir directory (the PostgreSQL queue: test_check_postgres), messages
aged by their names as 7.3's writer names them, queues that cannot be
read, and a database that never answers."""
import json
import os
import subprocess
import sys
import time
import unittest

from zope.sendmail.tests.support import child_env
from zope.sendmail.tests.support.console import ConsoleTestBase
from zope.sendmail.tests.support.monitoring import SilentServer
from zope.sendmail.tests.support.monitoring import queue_message


class ThresholdTests(unittest.TestCase):

    def _parse(self, text, parse=float):
        from zope.sendmail.monitoring.check import Threshold
        return Threshold.parse(text, parse)

    def test_interface(self):
        from zope.interface.verify import verifyObject
        from zope.sendmail.interfaces import IThreshold
        verifyObject(IThreshold, self._parse('1,2'))

    def test_one_value_warns_only(self):
        from zope.sendmail.monitoring.check import CRITICAL, OK, WARNING
        threshold = self._parse('10')
        self.assertEqual((threshold.warning, threshold.critical), (10, None))
        self.assertEqual(threshold.state(10), OK)
        self.assertEqual(threshold.state(11), WARNING)
        self.assertEqual(threshold.state(10 ** 9), WARNING)
        threshold = self._parse('10,20')
        self.assertEqual([threshold.state(v) for v in (5, 15, 25)],
                         [OK, WARNING, CRITICAL])
        threshold = self._parse(',20')
        self.assertEqual([threshold.state(v) for v in (15, 25)],
                         [OK, CRITICAL])
        self.assertEqual(threshold.perfdata(), ';20')

    def test_bad_ones(self):
        for text in ('', ',', '1,2,3', '-1', '20,10', 'x'):
            with self.assertRaises(ValueError, msg=text):
                self._parse(text)


class JudgeTests(unittest.TestCase):

    def _facts(self, age=None, **counts):
        from zope.sendmail.monitoring.facts import STATES
        return {'queue': 'q|1\x1b', 'oldest_age': age,
                'counts': dict(dict.fromkeys(STATES, 0), **counts)}

    def test_states_and_perfdata(self):
        from zope.sendmail.monitoring.check import Threshold
        from zope.sendmail.monitoring.check import judge
        age = Threshold(600, 1800)
        state, text = judge(self._facts(), max_age=age)
        self.assertEqual(state, 0)
        # The queue's name is escaped and cannot end the text with "|".
        self.assertEqual(
            text, "OK - q/1\\x1b: 0 queued, 0 being sent, 0 deferred,"
            " 0 rejected | 'queued'=0;;;0 'sending'=0;;;0 'deferred'=0;;;0"
            " 'rejected'=0;;;0 'oldest_age'=0s;600;1800;0")
        state, text = judge(self._facts(700, queued=2, rejected=1),
                            max_age=age, max_rejected=Threshold(0))
        self.assertEqual(state, 1)
        self.assertTrue(text.startswith(
            'WARNING - q/1\\x1b: oldest message queued 11 min ago (over 10'
            ' min); 1 rejected (over 0); 2 queued'), text)
        state, text = judge(self._facts(4000, queued=2), max_age=age)
        self.assertEqual(state, 2)
        self.assertIn("'oldest_age'=4000s;600;1800;0", text)


class CheckTests(ConsoleTestBase):

    def check(self, *args):
        status, output, app = self._run('--check', *args)
        self.assertEqual(output.count('\n'), 1, output)
        self.assertIn(' | ', output)  # always performance data
        return status, output.strip()

    def test_empty_queue_is_ok(self):
        status, output = self.check('--max-age', '10m,1h', self.queue)
        self.assertEqual(status, 0)
        self.assertEqual(
            output, f"OK - {self.queue}: 0 queued, 0 being sent, 0 deferred,"
            f" 0 rejected | 'queued'=0;;;0 'sending'=0;;;0 'deferred'=0;;;0"
            f" 'rejected'=0;;;0 'oldest_age'=0s;600;3600;0")

    def test_by_the_age_of_the_oldest_message(self):
        queue_message(self.queue, 30, 'young')
        status, output = self.check('--max-age', '10m,1h', self.queue)
        self.assertEqual(status, 0, output)
        self.assertIn('1 queued, 0 being sent, 0 deferred, 0 rejected,'
                      ' oldest queued 30 s ago', output)
        queue_message(self.queue, 1200, 'old')
        status, output = self.check('--max-age', '10m,1h', self.queue)
        self.assertEqual(status, 1, output)
        self.assertTrue(output.startswith(
            f'WARNING - {self.queue}: oldest message queued 20 min ago (over'
            f' 10 min); 2 queued'), output)
        self.assertRegex(output, r"'queued'=2;;;0 .* 'oldest_age'=120\ds;"
                                 r"600;3600;0$")
        queue_message(self.queue, 7300, 'older')
        status, output = self.check('--max-age', '10m,1h', self.queue)
        self.assertEqual(status, 2, output)
        self.assertTrue(output.startswith(
            f'CRITICAL - {self.queue}: oldest message queued 2 h 1 min ago'
            f' (over 1 h 0 min)'), output)
        # One value: a warning only, however old.
        status, output = self.check('--max-age', '10m', self.queue)
        self.assertEqual(status, 1, output)

    def test_by_rejected_and_deferred(self):
        queue_message(self.queue, 10, 'r1', sub='cur')  # deferred
        status, output = self.check('--max-deferred', '0,5', self.queue)
        self.assertEqual(status, 1, output)
        self.assertIn('1 deferred (over 0)', output)
        self.assertIn("'deferred'=1;0;5;0", output)

    def test_a_missing_queue_is_critical(self):
        missing = os.path.join(self.tmp, 'missing')
        status, output = self.check('--max-age', '1h', missing)
        self.assertEqual(status, 2, output)
        self.assertEqual(
            output, f"CRITICAL - no queue directory {missing!r} |"
            f" 'queued'=U;;;0 'sending'=U;;;0 'deferred'=U;;;0"
            f" 'rejected'=U;;;0 'oldest_age'=U;3600;;0")
        self.assertFalse(os.path.exists(missing))  # never made

    def test_no_queue_or_refused_is_critical(self):
        path = os.path.join(self.tmp, 'file')
        open(path, 'w').close()
        status, output = self.check(path)
        self.assertEqual(status, 2, output)
        self.assertTrue(output.startswith('CRITICAL - '), output)
        # A queue others could tamper with is refused, with why.
        os.chmod(self.queue, 0o777)
        status, output = self.check(self.queue)
        self.assertEqual(status, 2, output)
        self.assertIn('writable', output)

    def test_a_database_that_never_answers_is_unknown_in_time(self):
        server = SilentServer().start()
        self.addCleanup(server.stop)
        url = f'postgresql://mailer@127.0.0.1:{server.port}/site?queue=shop'
        started = time.monotonic()
        status, output = self.check('--check-timeout', '1', url)
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(
            output, f"UNKNOWN - postgresql://mailer@127.0.0.1:{server.port}"
            f"/site?queue=shop: the queue did not answer: no answer within"
            f" 1 s | 'queued'=U;;;0 'sending'=U;;;0 'deferred'=U;;;0"
            f" 'rejected'=U;;;0 'oldest_age'=U;;;0")
        self.assertEqual(status, 3)

    def test_a_process_stuck_on_its_queue_exits_in_time(self):
        # As a monitoring system runs it: a process, whose reader thread
        # is stuck on a database that never answers.
        server = SilentServer().start()
        self.addCleanup(server.stop)
        url = f'postgresql://mailer@127.0.0.1:{server.port}/site?queue=shop'
        started = time.monotonic()
        child = subprocess.run(
            [sys.executable, '-m', 'zope.sendmail.console', '--check',
             '--check-timeout', '1', '--max-age', '1h', url],
            capture_output=True, text=True, env=child_env(), timeout=60)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(child.returncode, 3, child)
        self.assertEqual(child.stderr, '')
        self.assertEqual(
            child.stdout, f"UNKNOWN - postgresql://mailer@127.0.0.1:"
            f"{server.port}/site?queue=shop: the queue did not answer: no"
            f" answer within 1 s | 'queued'=U;;;0 'sending'=U;;;0"
            f" 'deferred'=U;;;0 'rejected'=U;;;0 'oldest_age'=U;3600;;0\n")

    def test_usage_errors_are_unknown(self):
        status, output, app = self._run('--check', '--max-age', 'soon',
                                        self.queue)
        self.assertEqual(status, 3)
        self.assertTrue(output.startswith(
            "UNKNOWN - usage: argument --max-age: 'soon' is not an age"),
            output)
        self.assertEqual(output.count('\n'), 1)
        self.assertIn('a threshold of --check',
                      self._error('--status', '--max-age', '1h', self.queue))
        self.assertIn('--json goes with --status',
                      self._error('--list', '--json', self.queue))


class StatusJSONTests(ConsoleTestBase):

    def test_the_facts(self):
        queue_message(self.queue, 100, 'a')
        queue_message(self.queue, 50, 'b', sub='cur')
        status, output, app = self._run('--status', '--json', self.queue)
        self.assertEqual(status, 0, output)
        found = json.loads(output)
        self.assertEqual(sorted(found), [
            'counts', 'details', 'format', 'next_attempt', 'now', 'oldest',
            'oldest_age', 'others', 'queue', 'total', 'waiting'])
        self.assertEqual(found['counts'], {'sending': 0, 'queued': 1,
                                           'deferred': 1, 'rejected': 0})
        self.assertEqual((found['total'], found['waiting'], found['format'],
                          found['queue']), (2, 1, 1, self.queue))
        self.assertAlmostEqual(found['oldest_age'], 100, delta=5)
        self.assertIn('file system', found['details'])

    def test_a_missing_queue(self):
        missing = os.path.join(self.tmp, 'missing')
        self.assertIn('no queue directory',
                      self._error('--status', '--json', missing))
