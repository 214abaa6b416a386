"""A recipient's reply is the recipient's, the relay's pace the relay's:
a greylisted recipient waits with backoff while the queue goes on; a
throttled message waits for the pause, and a few times at most a pass."""
import os
import shutil
import sys
import tempfile
import time
import unittest

import transaction

from zope.sendmail.tests.support.processor import ProcessorTestBase
from zope.sendmail.testserver import SMTPServerLayer


GREYLISTED = (451, b'4.7.1 Greylisted, please try again later')


def rcpt_attempts(server, address):
    return sum(1 for line in server.transcript()
               if line.upper().startswith('C: RCPT')
               and f'<{address}>' in line)


class QueueBehindAGreylistedMessageTests(unittest.TestCase):
    """The running thread, as a site runs it."""

    layer = SMTPServerLayer

    def setUp(self):
        from zope.sendmail.events import dispatcher
        transaction.abort()
        self.tmp = tempfile.mkdtemp()
        self.queue = os.path.join(self.tmp, 'queue')
        # Cleanups, not tearDown: they run after the test's own cleanups,
        # which stop its thread (whose last events would otherwise start
        # the dispatcher again after it was stopped).
        self.addCleanup(shutil.rmtree, self.tmp)
        self.addCleanup(transaction.abort)
        self.addCleanup(dispatcher.stop)

    def _thread(self, **kw):
        from zope.sendmail.smtp.mailer import SMTPMailer
        from zope.sendmail.processing.thread import QueueProcessorThread
        server = self.layer.server
        thread = QueueProcessorThread(
            mailer=SMTPMailer(server.host, server.port, timeout=5),
            queuePath=self.queue, **kw)
        self.addCleanup(thread.stop, 30)
        return thread

    def test_thirty_messages_behind_a_greylisted_one_go_at_once(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        server = self.layer.server
        server.greylist('grey@example.com', 300)
        delivery = QueuedMailDelivery(self.queue, durable=False)
        delivery.send('shop@example.com', ['grey@example.com'],
                      b'Subject: first\n\n')
        transaction.commit()
        time.sleep(0.01)  # queued strictly before the others
        for n in range(30):
            delivery.send('shop@example.com', [f'c{n}@example.com'],
                          b'Subject: next\n\n')
        transaction.commit()
        thread = self._thread()
        start = time.monotonic()
        thread.start()
        server.wait_for(30, timeout=60)
        seconds = time.monotonic() - start
        self.assertEqual(len(server.messages), 30)
        self.assertLess(seconds, 10)  # generous: a couple of seconds
        # The greylisted one waits in cur/, due in the future, one
        # attempt counted; it was asked once, not again and again.
        cur = os.path.join(self.queue, 'cur')
        [name] = [n for n in os.listdir(cur) if not n.startswith('.')]
        self.assertGreater(os.stat(os.path.join(cur, name)).st_mtime,
                           time.time() + 10)
        with open(os.path.join(cur, '.retry-' + name)) as f:
            retry = f.read()
        self.assertIn('attempts: 1\n', retry)
        self.assertIn('grey@example.com: 451 4.7.1 Greylisted', retry)
        attempts = rcpt_attempts(server, 'grey@example.com')
        self.assertEqual(attempts, 1)
        self.assertEqual(server.throttled, 0)
        print(f'\n{self.id()}: 30 messages behind a greylisted one sent in'
              f' {seconds:.2f} s; RCPT attempts for it: {attempts}',
              file=sys.stderr)

    def test_greylisted_then_accepted_on_retry(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        server = self.layer.server
        server.greylist('grey@example.com', 0.5)
        delivery = QueuedMailDelivery(self.queue, durable=False)
        delivery.send('shop@example.com',
                      ['grey@example.com', 'ann@example.com'],
                      b'Subject: hello\n\n')
        transaction.commit()
        # Retries after 1 s (10 intervals): the greylisting is over then.
        self._thread(interval=0.1).start()
        server.wait_for(2, timeout=30)
        self.assertEqual([m.rcpt_tos for m in server.messages],
                         [['ann@example.com'], ['grey@example.com']])
        self.assertEqual(rcpt_attempts(server, 'grey@example.com'), 2)
        self.assertEqual(rcpt_attempts(server, 'ann@example.com'), 1)


class ThrottledMessageTests(ProcessorTestBase):

    def _timed_mailer(self):
        """A mailer whose connections record when each send began."""
        from zope.sendmail.smtp.mailer import SMTPMailer
        server, times = self.layer.server, []

        class TimedMailer(SMTPMailer):
            def connect(self):
                connection = super().connect()
                send = connection.send

                def timed(*args):
                    times.append(time.monotonic())
                    return send(*args)
                connection.send = timed
                return connection

        return TimedMailer(server.host, server.port, timeout=5), times

    def _schedule(self, **kw):
        """The real schedule, paced at 10 msg/s (pauses of about 0.1 s),
        recording the pauses it calls for."""
        from zope.sendmail.processing.scheduling import RelaySchedule

        class RecordingSchedule(RelaySchedule):
            pauses = []

            def throttled(self):
                pause = super().throttled()
                self.pauses.append(pause)
                return pause

        return RecordingSchedule(max_rate=10, **kw)

    def test_not_again_without_a_pause_nor_more_than_thrice_a_pass(self):
        from zope.sendmail.processing.passes import MAX_THROTTLES
        self.layer.server.fail_mail(454, '4.7.0 Throttling failure:'
                                    ' Maximum sending rate exceeded')
        self._queue(['bob@example.com'])
        [name] = self._messages('new')
        mailer, times = self._timed_mailer()
        schedule = self._schedule(throttle_patience=60)
        processor = self._makeOne(mailer, schedule=schedule)
        result = processor.process()
        self.assertEqual(result.counts['throttled'], MAX_THROTTLES)
        self.assertEqual(len(times), MAX_THROTTLES)
        self.assertTrue(result.more)  # a later pass sends it
        self.assertIsNone(result.error)
        # Each time after the pause the relay's last "too fast" called for.
        for pause, before, after in zip(schedule.pauses, times, times[1:]):
            self.assertGreaterEqual(after - before, pause - 0.001)
        self.assertGreater(min(schedule.pauses), 0.05)
        # Nothing counted against it: still in new/, untouched.
        self.assertEqual(self._messages('new'), [name])
        self.assertEqual(self._files('cur'), [])
        # Throttled for longer than throttle_patience, over passes: the
        # next pass defers it as a temporary failure.
        schedule.throttle_patience = 0.2
        result = processor.process()
        self.assertEqual(dict(result.counts), {'deferred': 1})
        self.assertGreaterEqual(times[-1] - times[-2], schedule.pauses[-1]
                                - 0.001)
        self.assertEqual(self._messages('cur'), [name])
        self.assertEqual(len(processor.throttles), 0)

    def test_the_others_go_while_a_throttled_one_waits(self):
        # Throttled at every try (as a relay refusing one sender's rate
        # would), the oldest message keeps the others waiting a few
        # pauses at most.
        from zope.sendmail.processing.passes import MAX_THROTTLES
        server = self.layer.server
        server.refuse('busy@example.com', 450, '4.7.1 too many messages'
                      ' for this recipient, slow down')
        self._queue(['busy@example.com'])
        time.sleep(0.01)
        self._queue(['carl@example.com'], ['dora@example.com'])
        result = self._makeOne(schedule=self._schedule()).process()
        self.assertEqual(result.counts['sent'], 2)
        self.assertEqual(result.counts['throttled'], MAX_THROTTLES)
        self.assertEqual(rcpt_attempts(server, 'busy@example.com'),
                         MAX_THROTTLES)
