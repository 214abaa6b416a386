"""``<mail:queuedDelivery metrics="true">``: the processor thread counted,
and its queue shown, in prometheus_client's default registry, which an
application exposing /metrics serves; loading the configuration again
never raises ``Duplicated timeseries``."""
from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.tests.support.zcml import ZCMLTestBase


class MetricsDirectiveTests(ZCMLTestBase):

    layer = SMTPServerLayer

    def _config(self, metrics='true', thread='true'):
        server = self.layer.server
        return f'''
            <mail:smtpMailer name="relay" hostname="{server.host}"
                             port="{server.port}" />
            <mail:queuedDelivery name="Mail" queuePath="{self.queue}"
                                 mailer="relay" metrics="{metrics}"
                                 processorThread="{thread}" />'''

    def _value(self, name, **labels):
        from prometheus_client import REGISTRY
        return REGISTRY.get_sample_value(name, labels) or 0

    def test_counted_in_the_default_registry(self):
        import transaction
        server = self.layer.server
        relay = f'{server.host}:{server.port}'
        before = self._value('zope_sendmail_sent_total', queue=self.queue,
                             relay=relay)
        self._load(self._config())
        self._load(self._config())  # again: the same metrics, no error
        threads = self._start()
        self.assertEqual(len(threads), 1)
        self._delivery().send('shop@example.com', ['ann@example.com'],
                              b'Subject: order\r\n\r\nShipped.\r\n')
        transaction.commit()
        server.wait_for(1)
        from zope.sendmail.tests.support import wait_until
        self.assertTrue(wait_until(lambda: self._value(
            'zope_sendmail_sent_total', queue=self.queue,
            relay=relay) == before + 1, timeout=10))
        self.assertTrue(wait_until(lambda: self._value(
            'zope_sendmail_messages', queue=self.queue,
            state='queued') == 0 and self._value(
            'zope_sendmail_queue_readable', queue=self.queue) == 1,
            timeout=10))
        # What /metrics of the application shows.
        from prometheus_client import generate_latest
        text = generate_latest().decode()
        self.assertIn(f'zope_sendmail_messages{{queue="{self.queue}",'
                      f'state="queued"}} 0.0', text)
        # Stopped with its thread (the cleanup does it): no longer shown.
        from zope.sendmail.startup import stop_processor_threads
        stop_processor_threads()
        self.assertIsNone(self._value_or_none())

    def _value_or_none(self):
        from prometheus_client import REGISTRY
        return REGISTRY.get_sample_value(
            'zope_sendmail_queue_readable', {'queue': self.queue})

    def test_off_by_default(self):
        self._load(self._config(metrics='false'))
        self._start()
        self.assertIsNone(self._value_or_none())

    def test_without_a_thread_is_refused(self):
        from zope.configuration.exceptions import ConfigurationError
        with self.assertRaises(ConfigurationError) as raised:
            self._load(self._config(thread='false'))
        self.assertIn('metrics="true" counts what its processor thread'
                      ' does, and processorThread is false',
                      str(raised.exception))
