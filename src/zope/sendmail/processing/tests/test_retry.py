"""Tests of the retry policy and the retry bookkeeping."""
import unittest


class RetryPolicyTests(unittest.TestCase):

    def _makeOne(self, *args, **kw):
        from zope.sendmail.processing.retry import RetryPolicy
        return RetryPolicy(*args, **kw)

    def test_defaults_scale_with_the_interval(self):
        policy = self._makeOne()
        self.assertEqual((policy.first, policy.cap), (30, 3600))
        fast = self._makeOne(interval=0.1)
        self.assertEqual([fast.delay(n) for n in (1, 2, 3)], [1, 2, 4])
        self.assertEqual(fast.cap, 120)
        self.assertEqual(policy.lifetime, 5 * 86400)

    def test_schedule(self):
        policy = self._makeOne(first=10, factor=3, cap=100)
        self.assertEqual([policy.delay(n) for n in range(1, 5)],
                         [10, 30, 90, 100])

    def test_bad_settings(self):
        for kw in ({'first': 0}, {'factor': 0.5}, {'lifetime': -1}):
            with self.assertRaisesRegex(ValueError, 'retry settings'):
                self._makeOne(**kw)

    def test_state_round_trip_and_garbage(self):
        from zope.sendmail.processing.retry import RetryState
        state = RetryState.fresh('1700000000.M1P2.host', 5)
        self.assertEqual(state.queued, 1700000000)
        self.assertEqual(RetryState.fresh('odd-name', 5).queued, 5)
        state.failed('451 later\nnext line', self._makeOne(first=10), 100)
        again = RetryState.parse(state.format(), 'x', 0)
        self.assertEqual((again.attempts, again.queued, again.next_attempt,
                          again.last_error),
                         (1, 1700000000, 110, '451 later next line'))
        junk = RetryState.parse(b'attempts: many\n\xff\nqueued', 'x', 7)
        self.assertEqual((junk.attempts, junk.queued), (0, 7))
