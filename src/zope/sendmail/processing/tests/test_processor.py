"""Tests of one queue processing pass, against the test SMTP server."""
import os
from zope.sendmail.tests.support.processor import ProcessorTestBase


class OutcomeTests(ProcessorTestBase):

    def test_sent_messages_are_removed_with_an_event(self):
        ids = self._queue(['bob@example.com'], ['carl@example.com'])
        result = self._makeOne().process()
        self.assertEqual(result.counts['sent'], 2)
        self.assertIsNone(result.error)
        server = self.layer.server
        self.assertEqual(sorted(m.rcpt_tos for m in server.messages),
                         [['bob@example.com'], ['carl@example.com']])
        self.assertFalse(any(b'X-Zope' in m.data for m in server.messages))
        self.assertEqual(self._files('new'), [])
        self.assertEqual(sorted(self._events()),
                         sorted([('MailSentEvent', ids[0], None),
                                 ('MailSentEvent', ids[1], None)]))
        info = [r.getMessage() for r in self.log.records
                if r.levelname == 'INFO']
        self.assertIn('message %s from alice@example.com to bob@example.com'
                      ' sent' % ids[0], info)

    def test_permanent_refusal_is_set_aside_with_its_reason(self):
        [message_id] = self._queue(['reject@example.com'])
        [name] = self._messages('new')
        result = self._makeOne().process()
        self.assertEqual(result.counts['rejected'], 1)
        self.assertEqual(self._files('new'),
                         ['.reason-' + name, '.rejected-' + name])
        with open(os.path.join(self.queue, 'new', '.reason-' + name)) as f:
            self.assertEqual(f.read(), 'all recipients refused:'
                             ' reject@example.com: 550 5.1.1 reject@ test'
                             ' address: no such user\n')
        [(kind, event_id, error)] = self._events()
        self.assertEqual((kind, event_id), ('MailErrorEvent', message_id))
        self.assertIn('550', error)
        # Never retried:
        self.now += 10 ** 6
        self.assertEqual(self._makeOne().process().counts['rejected'], 0)
        self.assertEqual(len(self.layer.server.messages), 0)

    def test_temporary_failure_is_retried_with_backoff(self):
        [message_id] = self._queue(['bob@example.com'])
        [name] = self._messages('new')
        server = self.layer.server
        server.fail_data(451, '4.3.0 try again later')
        processor = self._makeOne()
        schedule = []
        for attempt in range(1, 6):
            result = processor.process()
            self.assertEqual(result.counts['deferred'], 1, attempt)
            self.assertEqual(self._messages('cur'), [name])
            due = os.stat(os.path.join(self.queue, 'cur', name)).st_mtime
            schedule.append(round(due - self.now))
            self.assertEqual(result.next_due, None)  # it was just tried
            # Not due before its time:
            self.now = due - 1
            self.assertEqual(processor.process().counts, {})
            self.now = due
        self.assertEqual(schedule, [60, 120, 240, 480, 600])
        with open(os.path.join(self.queue, 'cur', '.retry-' + name)) as f:
            retry = f.read()
        self.assertIn('attempts: 5\n', retry)
        self.assertIn('last-error: message refused: 451 4.3.0 try again'
                      ' later\n', retry)
        self.assertEqual(self._events(), [])
        server.reset()
        self.assertEqual(processor.process().counts['sent'], 1)
        self.assertEqual(self._files('cur'), [])
        self.assertEqual(self._events(), [('MailSentEvent', message_id,
                                           None)])

    def test_next_due_is_reported(self):
        self._queue(['tempfail@example.com'])
        processor = self._makeOne()
        processor.process()
        self.now += 1
        result = processor.process()
        self.assertEqual(round(result.next_due - self.now), 59)

    def test_message_bytes_are_untouched_by_retries(self):
        self._queue(['bob@example.com'])
        [name] = self._messages('new')
        with open(os.path.join(self.queue, 'new', name), 'rb') as f:
            before = f.read()
        self.layer.server.fail_data(451, '4.3.0 later')
        self._makeOne().process()
        with open(os.path.join(self.queue, 'cur', name), 'rb') as f:
            self.assertEqual(f.read(), before)

    def test_lifetime_expiry(self):
        [message_id] = self._queue(['bob@example.com'])
        [name] = self._messages('new')
        self.layer.server.fail_data(451, '4.3.0 try again later')
        processor = self._makeOne()
        processor.process()
        self.now += 86400 + 1
        result = processor.process()
        self.assertEqual(result.counts['rejected'], 1)
        self.assertIn('.rejected-' + name, self._files('cur'))
        [(kind, event_id, error)] = self._events()
        self.assertEqual((kind, event_id), ('MailErrorEvent', message_id))
        self.assertRegex(error, r'^expired: not delivered after 1.0 days'
                         r' and 2 attempts; last error: message refused:'
                         r' 451')
        self.assertNotIn('.retry-' + name, self._files('cur'))

    def test_dropped_connection_is_temporary(self):
        self._queue(['bob@example.com'], ['carl@example.com'])
        server = self.layer.server
        server.drop_at, server.drop_once = 'dot', True
        result = self._makeOne(connections=1).process()
        self.assertEqual((result.counts['deferred'], result.counts['sent']),
                         (1, 1))
        self.assertEqual(server.connections, 2)

    def test_partial_recipients(self):
        [message_id] = self._queue(['bob@example.com', 'reject@example.com',
                                    'tempfail@example.com'])
        [name] = self._messages('new')
        server = self.layer.server
        result = self._makeOne().process()
        self.assertEqual(result.counts['deferred'], 1)
        self.assertEqual(server.messages[0].rcpt_tos, ['bob@example.com'])
        self.assertEqual(self._events(), [
            ('MailErrorEvent', message_id, 'recipients refused:'
             ' reject@example.com: 550 5.1.1 reject@ test address: no such'
             ' user'),
            ('MailSentEvent', message_id, None)])
        with open(os.path.join(self.queue, 'cur', name), 'rb') as f:
            self.assertTrue(f.read().startswith(
                b'X-Zope-From: alice@example.com\n'
                b'X-Zope-To: tempfail@example.com\n'))
        server.local_part_rules = False
        self.now += 60
        self.assertEqual(self._makeOne().process().counts['sent'], 1)
        self.assertEqual([m.rcpt_tos for m in server.messages],
                         [['bob@example.com'], ['tempfail@example.com']])

    def test_all_refused_some_for_now(self):
        self._queue(['reject@example.com', 'tempfail@example.com'])
        [name] = self._messages('new')
        result = self._makeOne().process()
        self.assertEqual(result.counts['deferred'], 1)
        self.assertEqual([e[0] for e in self._events()], ['MailErrorEvent'])
        with open(os.path.join(self.queue, 'cur', name), 'rb') as f:
            self.assertIn(b'X-Zope-To: tempfail@example.com\n', f.read())

    def test_corrupt_file_is_set_aside_and_the_others_sent(self):
        self._queue(['bob@example.com'], ['carl@example.com'])
        corrupt = os.path.join(self.queue, 'new', '0000000001.corrupt')
        with open(corrupt, 'wb') as f:
            f.write(b'Subject: no envelope\n\nbody')
        result = self._makeOne().process()
        self.assertEqual((result.counts['sent'], result.counts['rejected']),
                         (2, 1))
        self.assertIn('.rejected-0000000001.corrupt', self._files('new'))
        with open(os.path.join(self.queue, 'new',
                               '.reason-0000000001.corrupt')) as f:
            self.assertEqual('unreadable queue file 0000000001.corrupt: queue'
                             ' file does not start with an X-Zope-From'
                             ' line\n', f.read())

    def test_vanished_file(self):
        from zope.sendmail.processing.passes import PassResult
        self._queue(['bob@example.com'])
        processor = self._makeOne()
        [entry] = processor.due(PassResult())
        os.unlink(entry.key)
        result = processor.process()
        self.assertEqual(result.counts, {})

    def test_unexpected_error_defers(self):
        self._queue(['bob@example.com'])
        result = self._makeOne(mailer=BrokenMailer()).process()
        self.assertEqual(result.counts['deferred'], 1)
        self.assertIn('unexpected error while sending',
                      self.log.records[0].getMessage())

    def test_mailer_without_connect(self):
        from zope.sendmail.smtp.mailer import SMTPMailer
        server = self.layer.server
        self._queue(['bob@example.com'], ['reject@example.com'])
        mailer = OldStyleMailer(SMTPMailer(server.host, server.port))
        result = self._makeOne(mailer=mailer).process()
        self.assertEqual((result.counts['sent'], result.counts['rejected']),
                         (1, 1))


class BrokenMailer:

    def connect(self):
        return self

    def send(self, fromaddr, toaddrs, message):
        raise KeyError('a bug')

    def close(self):
        pass


class OldStyleMailer:
    """Only the IMailer methods, raising smtplib's exceptions."""

    def __init__(self, mailer):
        self.mailer = mailer

    def send(self, fromaddr, toaddrs, message):
        with self.mailer.connect() as connection:
            smtp = connection._smtp
            return smtp.sendmail(fromaddr, toaddrs, message)

    def vote(self, fromaddr, toaddrs, message):
        pass

    def abort(self):
        pass
