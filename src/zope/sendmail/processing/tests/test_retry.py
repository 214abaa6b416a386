"""Tests of the retry policy."""
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
