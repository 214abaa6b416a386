"""Unit tests of RelaySchedule, on a clock of their own."""
import unittest


class Clock:

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class RelayScheduleTests(unittest.TestCase):

    def _makeOne(self, **kw):
        from zope.sendmail.processing.scheduling import RelaySchedule
        self.clock = Clock()
        return RelaySchedule(clock=self.clock, **kw)

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IRelaySchedule
        self.assertTrue(verifyObject(IRelaySchedule, self._makeOne()))

    def test_bad_settings(self):
        for kw in ({'connections': 0}, {'connections': 1.5},
                   {'max_rate': 0}, {'max_rate': float('inf')},
                   {'max_rate': -1}, {'max_rate': '14'}):
            with self.assertRaises(ValueError) as caught:
                self._makeOne(**kw)
            self.assertIn(next(iter(kw)), str(caught.exception))

    def test_one_connection_first_more_for_a_backlog(self):
        schedule = self._makeOne()
        self.assertTrue(schedule.may_open(1))
        self.assertFalse(schedule.may_open(100))  # one is being opened
        schedule.opened()
        self.assertFalse(schedule.may_open(10))   # ten go over one
        self.assertTrue(schedule.may_open(11))
        schedule.opened()
        self.assertFalse(schedule.may_open(20))
        self.assertTrue(schedule.may_open(21))
        schedule.failed()
        self.assertEqual(schedule.concurrency, 8)

    def test_never_more_than_connections(self):
        schedule = self._makeOne(connections=2)
        for n in range(2):
            self.assertTrue(schedule.may_open(1000))
            schedule.opened()
        self.assertFalse(schedule.may_open(1000))
        schedule.closed()
        self.assertTrue(schedule.may_open(1000))

    def test_refusal_lowers_the_concurrency_then_it_probes_upward(self):
        schedule = self._makeOne(probe_after=300)
        for n in range(3):
            self.assertTrue(schedule.may_open(1000))
            schedule.opened()
        self.assertTrue(schedule.may_open(1000))
        schedule.refused()
        self.assertEqual(schedule.concurrency, 3)
        self.assertFalse(schedule.may_open(1000))
        for n in range(3):
            schedule.closed()
        # Remembered by the next pass...
        for n in range(3):
            self.assertTrue(schedule.may_open(1000))
            schedule.opened()
        self.assertFalse(schedule.may_open(1000))
        # ...until it probes one more, much later.
        self.clock.now += 300
        self.assertTrue(schedule.may_open(1000))
        self.assertEqual(schedule.concurrency, 4)

    def test_the_only_connection_refused_lowers_nothing(self):
        schedule = self._makeOne()
        self.assertTrue(schedule.may_open(5))
        schedule.refused()
        self.assertEqual(schedule.concurrency, 8)

    def test_max_rate_paces_all_connections(self):
        schedule = self._makeOne(max_rate=4)
        self.assertEqual(schedule.pause(), 0)     # goes now
        self.assertEqual(schedule.pause(), 0.25)  # another waits
        self.assertEqual(schedule.pause(), 0.25)  # and another
        self.clock.now += 0.25
        self.assertEqual(schedule.pause(), 0)
        self.assertEqual(schedule.pause(), 0.25)
        self.clock.now += 10  # no burst after a lull
        self.assertEqual(schedule.pause(), 0)
        self.assertEqual(schedule.pause(), 0.25)

    def test_a_late_turn_catches_up_half_a_turn(self):
        schedule = self._makeOne(max_rate=4)
        schedule.pause()
        self.clock.now += 0.30
        self.assertEqual(schedule.pause(), 0)
        self.assertAlmostEqual(schedule.pause(), 0.20)

    def test_no_pace_without_a_rate(self):
        schedule = self._makeOne()
        self.assertEqual([schedule.pause() for n in range(5)], [0] * 5)
        self.assertIsNone(schedule.rate)

    def test_throttle_learns_the_rate_the_relay_took(self):
        from zope.sendmail.processing.scheduling import DECREASE
        schedule = self._makeOne()
        for n in range(20):
            schedule.pause()
            self.clock.now += 0.02
        schedule.throttled()  # 19 taken, then "too fast"
        self.assertAlmostEqual(schedule.rate, DECREASE * 19)
        self.assertAlmostEqual(schedule.pause(), 1 / schedule.rate)
        # A throttle of a message already on its way: nothing new.
        schedule.throttled()
        self.assertAlmostEqual(schedule.rate, DECREASE * 19)
        # Throttled again after the pause: twice the pause.
        self.clock.now += 1 / schedule.rate
        schedule.throttled()
        self.assertAlmostEqual(schedule.pause(), 2 / schedule.rate)
        # Accepted messages: the rate creeps up, then the pace is lifted.
        rate = schedule.rate
        schedule.sent()
        self.assertGreater(schedule.rate, rate)
        for n in range(800):
            schedule.sent()
        self.assertIsNone(schedule.rate)

    def test_throttle_while_paced_lowers_the_rate_to_what_was_taken(self):
        from zope.sendmail.processing.scheduling import DECREASE
        schedule = self._makeOne(max_rate=10)
        schedule.throttled()  # nothing answered: 97 % of the rate
        self.assertAlmostEqual(schedule.rate, DECREASE * 10)
        self.clock.now += 1
        for n in range(4):
            schedule.sent()
        self.clock.now += 0.5
        schedule.throttled()  # 4 answered in the last second
        self.assertAlmostEqual(schedule.rate, DECREASE * 4)
        for n in range(2000):
            schedule.sent()
        self.assertEqual(schedule.rate, 10)  # never above max_rate

    def test_pauses_are_bounded(self):
        from zope.sendmail.processing.scheduling import MAX_PAUSE
        schedule = self._makeOne()
        for n in range(50):
            schedule.throttled()
        self.assertLessEqual(schedule.pause(), MAX_PAUSE)

    def test_no_growth_right_after_a_throttle_or_while_paced(self):
        schedule = self._makeOne(max_rate=1)
        schedule.may_open(1000)
        schedule.opened()
        schedule.pause()
        schedule.pause()  # the connection waits: the pace is the limit
        self.assertFalse(schedule.may_open(1000))
        self.clock.now += 5
        self.assertTrue(schedule.may_open(1000))
        schedule.opened()
        schedule.throttled()
        self.assertFalse(schedule.may_open(1000))

    def test_throttled_says_the_pause(self):
        schedule = self._makeOne()
        schedule.pause()
        wait = schedule.throttled()
        self.assertGreater(wait, 0)
        self.assertEqual(schedule.pause(), wait)  # every connection waits
        self.clock.now += wait / 2
        # Throttled again within the pause: it starts again from now.
        self.assertEqual(schedule.throttled(), wait)
        self.clock.now += wait
        self.assertEqual(schedule.pause(), 0.0)

    def test_the_lowest_recipient_cap_is_kept(self):
        schedule = self._makeOne()
        self.assertIsNone(schedule.max_recipients)
        for cap, kept in [(None, None), (0, None), (100, 100), (None, 100),
                          (500, 100), (50, 50)]:
            schedule.capped(cap)
            self.assertEqual(schedule.max_recipients, kept, cap)

    def test_repr(self):
        schedule = self._makeOne(connections=3, max_rate=0.5)
        self.assertEqual(repr(schedule),
                         '<RelaySchedule 3 of 3 connections, 0.5/s>')


class ThrottlesTests(unittest.TestCase):

    def _makeOne(self):
        from zope.sendmail.processing.passes import Throttles
        self.clock = Clock()
        return Throttles(clock=self.clock)

    def test_provides_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IThrottledMessages
        self.assertTrue(verifyObject(IThrottledMessages, self._makeOne()))

    def test_remembers_the_first_throttle_and_the_last_pause(self):
        throttles = self._makeOne()
        self.assertEqual((throttles.since('m'), throttles.wait('m')),
                         (None, 0.0))
        throttles.throttled('m', 1.0)
        self.clock.now += 0.25
        self.assertEqual(throttles.wait('m'), 0.75)
        self.clock.now += 2
        self.assertEqual(throttles.wait('m'), 0.0)
        throttles.throttled('m', 4.0)
        self.assertEqual(throttles.since('m'), 1000.0)  # the first time
        self.assertEqual(throttles.wait('m'), 4.0)
        throttles.forget('m')
        self.assertEqual((throttles.since('m'), len(throttles)), (None, 0))

    def test_prune_forgets_messages_gone_from_the_queue(self):
        import os
        import tempfile

        from zope.sendmail.stores import open_store
        throttles = self._makeOne()
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(os.path.join(tmp, 'queue'))
            item = store.add('m@example.com', 'a@example.com',
                             ['b@example.com'], b'Subject: x\r\n\r\n')
            store.vote([item])
            store.finish([item])
            [entry] = store.due().entries
            throttles.throttled(entry.key, 1.0)
            throttles.throttled(entry.key + '-gone', 1.0)
            throttles.prune(store)
            self.assertEqual(len(throttles), 1)
            self.assertIsNotNone(throttles.since(entry.key))


class RelaySchedulesTests(unittest.TestCase):

    def _makeOne(self):
        from zope.sendmail.processing.scheduling import RelaySchedule
        from zope.sendmail.processing.scheduling import RelaySchedules
        return RelaySchedules(lambda: RelaySchedule(3, max_rate=5))

    def test_interface(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import IRelaySchedules
        verifyObject(IRelaySchedules, self._makeOne())

    def test_one_schedule_per_relay(self):
        schedules = self._makeOne()
        self.assertEqual(schedules.relays(), [])
        one = schedules.get('a.example:25')
        self.assertIs(schedules.get('a.example:25'), one)
        two = schedules.get('b.example:25')
        self.assertIsNot(one, two)
        self.assertEqual((two.limit, two.max_rate), (3, 5.0))
        self.assertEqual(schedules.relays(), ['a.example:25', 'b.example:25'])
        one.refused()  # as after a may_open: nothing shared
        self.assertEqual(repr(schedules),
                         '<RelaySchedules of a.example:25, b.example:25>')
