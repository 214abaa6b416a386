"""Tests of the side files' formats: ``.retry-X`` read back as written,
what cannot be read of it forgotten."""
import unittest


class RetryFileTests(unittest.TestCase):

    def test_state_round_trip_and_garbage(self):
        from zope.sendmail.processing.retry import RetryPolicy
        from zope.sendmail.stores.maildir.sidefiles import format_retry
        from zope.sendmail.stores.maildir.sidefiles import fresh_state
        from zope.sendmail.stores.maildir.sidefiles import parse_retry
        state = fresh_state('1700000000.M1P2.host', 5)
        self.assertEqual(state.queued, 1700000000)
        self.assertEqual(fresh_state('odd-name', 5).queued, 5)
        state.failed('451 later\nnext line', RetryPolicy(first=10), 100)
        again = parse_retry(format_retry(state), 'x', 0)
        self.assertEqual((again.attempts, again.queued, again.next_attempt,
                          again.last_error),
                         (1, 1700000000, 110, '451 later next line'))
        junk = parse_retry(b'attempts: many\n\xff\nqueued', 'x', 7)
        self.assertEqual((junk.attempts, junk.queued), (0, 7))
