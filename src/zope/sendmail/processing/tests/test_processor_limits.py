"""A pass against relays that limit connections and rates (the test
server's max_connections and max_rate), and the replies that say so."""
import os
import time

from zope.sendmail.tests.support.processor import ProcessorTestBase


class LimitedRelayTests(ProcessorTestBase):

    def _delivered_once(self, ids):
        from zope.sendmail.message import message_id_of
        seen = [message_id_of(m.data) for m in self.layer.server.messages]
        self.assertEqual(sorted(seen), sorted(ids))

    def test_ten_due_messages_use_one_connection(self):
        ids = self._queue(*[['bob@example.com']] * 10)
        self.layer.server.delay = 0.002
        result = self._makeOne().process()
        self.assertEqual(result.counts['sent'], 10)
        self.assertEqual(self.layer.server.connections, 1)
        self._delivered_once(ids)

    def test_a_backlog_opens_more_connections(self):
        ids = self._queue(*[['bob@example.com']] * 80)
        self.layer.server.delay = 0.002
        processor = self._makeOne(connections=4)
        result = processor.process()
        self.assertEqual(result.counts['sent'], 80)
        self.assertGreater(self.layer.server.connections, 1)
        self.assertLessEqual(self.layer.server.connections, 4)
        self._delivered_once(ids)

    def test_connection_limited_relay_gets_everything(self):
        server = self.layer.server
        server.max_connections, server.delay = 3, 0.002
        ids = self._queue(*[['bob@example.com']] * 120)
        processor = self._makeOne()
        result = processor.process()
        self.assertEqual(result.counts['sent'], 120, result)
        self.assertIsNone(result.error)
        self.assertEqual(self._files('cur'), [])
        self.assertEqual(result.counts['turned away'], server.turned_away)
        self.assertLessEqual(server.turned_away, 1)
        if server.turned_away:
            self.assertEqual(processor.schedule.concurrency, 3)
        self._delivered_once(ids)
        # The next pass remembers: no connection turned away.
        server.reset()
        server.max_connections, server.delay = 3, 0.002
        self._queue(*[['bob@example.com']] * 60)
        result = processor.process()
        self.assertEqual(result.counts['sent'], 60)
        self.assertEqual(server.turned_away, 0)

    def test_rate_limited_relay_gets_everything_nothing_deferred(self):
        import collections
        server = self.layer.server
        server.max_rate = 25
        ids = self._queue(*[['bob@example.com']] * 50)
        processor = self._makeOne()
        counts = collections.Counter()
        for passes in range(1, 6):  # a message throttled thrice waits
            result = processor.process()
            counts.update(result.counts)
            if not result.more:
                break
        self.assertEqual(counts['sent'], 50, counts)
        self.assertLessEqual(passes, 2)
        self.assertEqual(self._files('cur'), [])  # no attempt counted
        self.assertEqual(counts['throttled'], server.throttled)
        self.assertLess(server.throttled, 15)
        self.assertIsNotNone(processor.schedule._learned)
        self.assertEqual(len(processor.throttles), 0)  # all forgotten
        self._delivered_once(ids)

    def test_max_rate_paces_the_pass(self):
        self._queue(*[['bob@example.com']] * 6)
        start = time.monotonic()
        result = self._makeOne(max_rate=20).process()
        self.assertEqual(result.counts['sent'], 6)
        self.assertGreaterEqual(time.monotonic() - start, 5 / 20)

    def test_the_only_connection_turned_away_stops_the_pass(self):
        from zope.sendmail.interfaces import RelayBusyError
        self.layer.server.max_connections = 0
        self._queue(['bob@example.com'], ['carl@example.com'])
        result = self._makeOne().process()
        self.assertIsInstance(result.error, RelayBusyError)
        self.assertIn('432 4.3.2', str(result.error))
        self.assertEqual(len(self._messages('new')), 2)
        self.assertEqual(self._files('cur'), [])

    def test_a_daily_quota_stops_the_pass_and_blames_no_message(self):
        from zope.sendmail.interfaces import QuotaExceededError
        self.layer.server.fail_mail(
            454, 'Throttling failure: Daily message quota exceeded')
        self._queue(['bob@example.com'], ['carl@example.com'])
        result = self._makeOne().process()
        self.assertIsInstance(result.error, QuotaExceededError)
        self.assertEqual(len(self._messages('new')), 2)
        self.assertEqual(self._files('cur'), [])
        self.assertIn('quota used up, pass stopped',
                      self.log.records[-1].getMessage())

    def test_throttled_long_is_deferred_and_the_pass_stops(self):
        from zope.sendmail.interfaces import ThrottledError
        from zope.sendmail.processing.scheduling import RelaySchedule
        self.layer.server.fail_mail(454, '4.7.0 Throttling failure:'
                                    ' Maximum sending rate exceeded')
        self._queue(['bob@example.com'], ['carl@example.com'])
        schedule = RelaySchedule(throttle_patience=0.3)
        result = self._makeOne(schedule=schedule).process()
        self.assertIsInstance(result.error, ThrottledError)
        self.assertEqual(result.counts['deferred'], 1)
        self.assertGreater(result.counts['throttled'], 1)
        self.assertEqual(len(self._messages('cur')), 1)
        self.assertEqual(len(self._messages('new')), 1)
        retry = [n for n in self._files('cur') if n.startswith('.retry-')]
        with open(os.path.join(self.queue, 'cur', retry[0])) as f:
            self.assertIn('attempts: 1', f.read())
