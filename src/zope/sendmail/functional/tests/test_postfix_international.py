"""International addresses end to end, through a real Postfix relay with
``smtputf8_enable = yes`` (`PostfixLayer`): a non-ASCII local part goes
with SMTPUTF8, an IDN domain as its A-label, into Postfix's sink."""
from zope.sendmail.delivery import QueuedMailDelivery
from zope.sendmail.processing.thread import QueueProcessorThread
from zope.sendmail.tests.support.postfix import PostfixTestBase
from zope.sendmail.tests.support.postfix import make_message


class InternationalTests(PostfixTestBase):

    def test_non_ascii_local_part_and_idn_domain(self):
        import transaction
        delivery = QueuedMailDelivery(self.queue)
        message_id = delivery.send(
            'shöp@example.com', ['jörg@bücher.example', 'Ann <ann@x.org>'],
            make_message(1))
        transaction.commit()
        thread = QueueProcessorThread(queuePath=self.queue,
                                      mailer=self.mailer())
        result = thread.process_once()
        self.assertEqual(dict(result.counts), {'sent': 1})
        delivered = self.layer.wait_for(2)
        self.assertEqual(
            sorted(m['X-Original-To'] for m in delivered),
            ['ann@x.org', 'jörg@xn--bcher-kva.example'])
        for m in delivered:
            self.assertEqual(m['Return-Path'], '<shöp@example.com>')
            self.assertEqual(m['Message-Id'], f'<{message_id}>')
            self.assertEqual(m['Subject'], 'Grüße, test 1')
        self.assertEqual(self.queue_files('new') + self.queue_files('cur'),
                         [])
