"""7.3's ``SMTPMailer.smtp``: a factory of the user's, called and driven as
7.3 did.

7.3 made its client with ``smtp(hostname, str(port), timeout=...)`` and
drove it with ``ehlo``, ``helo``, ``has_extn``, ``starttls``, ``login``,
``sendmail``, ``quit`` and ``close``; its users' tests set ``smtp`` to
doubles with just those methods, or to mocks.  Such clients are driven so
here, and credentials still never go unencrypted to a relay that is not
on this host.  A subclass of smtplib's classes is called as 7.3 called it,
then speaks SMTP as smtplib's own classes do.
"""
import os
import shutil
import smtplib
import socket
import ssl
import tempfile
import unittest
from unittest import mock

import transaction

from zope.sendmail.testserver import SMTPServerLayer
from zope.sendmail.testserver import make_layer


Compat73ImplicitTLSLayer = make_layer('Compat73ImplicitTLSLayer',
                                      implicit_tls=True)

FROM = 'alice@example.com'
TO = ('bob@example.com', 'carol@example.com')
TEXT = 'Subject: 7.3\n\nA message as 7.3 tests wrote them.\n'


class Client:
    """An SMTP client as 7.3's users wrote them for their tests: only the
    methods 7.3's mailer called, each noting its call in *calls*.  The
    class attributes say how it answers; a test changes them on a
    subclass."""

    ehlo_code = 250
    extensions = ('starttls', 'auth')
    sendmail_result = None
    sendmail_error = None
    quit_error = None
    sock = None

    def __init__(self, calls, host, port, **kw):
        self.calls = calls
        calls.append(('smtp', (host, port), kw))

    def _note(self, name, *args):
        self.calls.append((name,) + args)

    def ehlo(self):
        self._note('ehlo')
        return self.ehlo_code, b'relay.example.com'

    def helo(self):
        self._note('helo')
        return 250, b'relay.example.com'

    def has_extn(self, name):
        self._note('has_extn', name)
        return name in self.extensions

    def starttls(self):
        self._note('starttls')

    def login(self, user, password):
        self._note('login', user, password)

    def sendmail(self, fromaddr, toaddrs, message):
        self._note('sendmail', fromaddr, toaddrs, message)
        if self.sendmail_error is not None:
            raise self.sendmail_error
        return self.sendmail_result

    def quit(self):
        self._note('quit')
        if self.quit_error is not None:
            raise self.quit_error

    def close(self):
        self._note('close')


class ClientTestBase(unittest.TestCase):

    client = Client

    def setUp(self):
        self.calls = []

    def _factory(self, *args, **kw):
        return self.client(self.calls, *args, **kw)

    def _mailer(self, **kw):
        from zope.sendmail.mailer import SMTPMailer
        mailer = SMTPMailer('relay.example.com', 2525, **kw)
        mailer.smtp = self._factory
        return mailer

    def _names(self):
        return [call[0] for call in self.calls]

    def _with(self, **attributes):
        """Clients answering as *attributes* say, from now on."""
        self.client = type('Client', (self.client,), attributes)


class FactoryTests(ClientTestBase):

    def test_the_factory_is_called_as_73_called_it(self):
        self._mailer().send(FROM, TO, TEXT)
        self.assertEqual(self.calls[0],
                         ('smtp', ('relay.example.com', '2525'),
                          {'timeout': 10}))
        self.calls[:] = []
        self._mailer(timeout=3.5).send(FROM, TO, TEXT)
        self.assertEqual(self.calls[0][2], {'timeout': 3.5})
        # None is 7.3's opt-out: the client's own default applies.
        self.calls[:] = []
        self._mailer(timeout=None).send(FROM, TO, TEXT)
        self.assertEqual(self.calls[0][2], {})

    def test_a_client_is_driven_as_73_drove_it(self):
        self.assertEqual(self._mailer().send(FROM, TO, TEXT), {})
        self.assertEqual(self._names(), [
            'smtp', 'ehlo', 'has_extn', 'starttls', 'ehlo', 'sendmail',
            'quit', 'close'])
        # The arguments as the mailer was given them, the tuple and the
        # text with its bare LFs included: the client is the user's.
        [sendmail] = [call for call in self.calls if call[0] == 'sendmail']
        self.assertEqual(sendmail, ('sendmail', FROM, TO, TEXT))
        self.assertIs(sendmail[2], TO)

    def test_helo_after_a_refused_ehlo(self):
        self._with(ehlo_code=502)
        self._mailer().send(FROM, TO, TEXT)
        self.assertEqual(self._names()[:3], ['smtp', 'ehlo', 'helo'])
        self.assertIn('sendmail', self._names())

    def test_ehlo_and_helo_refused_is_a_RuntimeError_as_in_73(self):
        from zope.sendmail.interfaces import GreetingRefusedError
        self._with(ehlo_code=502, helo=lambda self: (554, b'go away'))
        with self.assertRaises(RuntimeError) as caught:
            self._mailer().send(FROM, TO, TEXT)
        self.assertIsInstance(caught.exception, GreetingRefusedError)
        self.assertNotIn('sendmail', self._names())
        self.assertEqual(self._names()[-1], 'close')

    def test_vote_makes_the_client_that_send_uses(self):
        mailer = self._mailer()
        mailer.vote(FROM, TO, TEXT)
        self.assertEqual(self._names(), ['smtp', 'ehlo', 'has_extn',
                                         'starttls', 'ehlo'])
        mailer.send(FROM, TO, TEXT)
        self.assertEqual(self._names().count('smtp'), 1)
        self.assertEqual(self._names()[-3:], ['sendmail', 'quit', 'close'])
        mailer.vote(FROM, TO, TEXT)
        mailer.abort()
        self.assertEqual(self._names()[-2:], ['quit', 'close'])
        self.assertEqual(self._names().count('sendmail'), 1)

    def test_one_client_per_message_as_in_73(self):
        # A connection carrying several messages (the queue processor's)
        # makes a client for each: none is used again in a state only it
        # knows.
        with self._mailer().connect() as connection:
            connection.send(FROM, TO, TEXT)
            connection.send(FROM, TO, TEXT)
        self.assertEqual(self._names().count('smtp'), 2)
        self.assertEqual(self._names().count('quit'), 2)
        self.assertEqual(self._names()[-1], 'close')

    def test_recipients_refused_by_sendmail_are_returned(self):
        refused = {'carol@example.com': (550, b'5.1.1 no such user')}
        self._with(sendmail_result=refused)
        self.assertEqual(self._mailer().send(FROM, TO, TEXT), refused)

    def test_refusals_are_classified(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        from zope.sendmail.interfaces import TemporaryDeliveryError
        everyone = {address: (550, b'5.1.1 no such user') for address in TO}
        for error, cls in [
                (smtplib.SMTPRecipientsRefused(everyone),
                 PermanentDeliveryError),
                (smtplib.SMTPSenderRefused(451, b'4.3.0 later', FROM),
                 TemporaryDeliveryError),
                (smtplib.SMTPDataError(554, b'5.6.0 content rejected'),
                 PermanentDeliveryError),
                (smtplib.SMTPServerDisconnected('gone'),
                 TemporaryDeliveryError)]:
            self.calls[:] = []
            self._with(sendmail_error=error)
            with self.assertRaises(cls) as caught:
                self._mailer().send(FROM, TO, TEXT)
            self.assertIs(caught.exception.__cause__, error)
            # QUIT after a failure too, as 7.3 did.
            self.assertEqual(self._names()[-2:], ['quit', 'close'])

    def test_every_recipient_refused_names_them(self):
        from zope.sendmail.interfaces import PermanentDeliveryError
        everyone = {address: (550, b'5.1.1 no such user') for address in TO}
        self._with(sendmail_error=smtplib.SMTPRecipientsRefused(everyone))
        with self.assertRaises(PermanentDeliveryError) as caught:
            self._mailer().send(FROM, TO, TEXT)
        self.assertEqual(caught.exception.recipients, everyone)

    def test_a_QUIT_failing_with_SSLError_closes_as_in_73(self):
        self._with(quit_error=ssl.SSLError('dang'))
        self.assertEqual(self._mailer().send(FROM, TO, TEXT), {})
        self.assertEqual(self._names()[-2:], ['quit', 'close'])

    def test_the_wrapped_client_provides_ISMTPClient73(self):
        from zope.interface.verify import verifyObject

        from zope.sendmail.interfaces import ISMTPClient73
        from zope.sendmail.smtp.client73 import SMTPClient73
        wrapped = SMTPClient73(self._factory('relay.example.com', '25'))
        verifyObject(ISMTPClient73, wrapped)
        self.assertIsNone(wrapped.sock)
        self.assertEqual(wrapped.starttls(), (220, mock.ANY))


class CredentialTests(ClientTestBase):
    """Credentials never go unencrypted to a relay not on this host: a
    client without a socket is taken at its word, as 7.3 took it; a real
    socket has the last word."""

    def _send_with_credentials(self, **kw):
        return self._mailer(username='jane', password='secret',
                            **kw).send(FROM, TO, TEXT)

    def test_after_a_starttls_that_raised_nothing(self):
        self._send_with_credentials()
        self.assertIn(('login', 'jane', 'secret'), self.calls)
        self.assertLess(self._names().index('starttls'),
                        self._names().index('login'))

    def test_never_without_tls_to_a_client_without_a_socket(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self._with(extensions=('auth',))
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'does not offer STARTTLS'):
            self._send_with_credentials()
        self.assertNotIn('login', self._names())
        self.assertNotIn('sendmail', self._names())
        self.assertEqual(self._names()[-1], 'close')
        # Unless the site says so.
        self.calls[:] = []
        self._send_with_credentials(no_tls=True)
        self.assertIn(('login', 'jane', 'secret'), self.calls)

    def test_a_client_without_has_extn_is_offered_nothing(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self._with(has_extn=None)
        with self.assertRaises(MailerConfigurationError):
            self._send_with_credentials()
        self.assertNotIn('login', self._names())
        # Without credentials, it sends, as 7.3 did.
        self.calls[:] = []
        self._mailer().send(FROM, TO, TEXT)
        self.assertEqual(self._names(), ['smtp', 'ehlo', 'sendmail',
                                         'quit', 'close'])

    def test_force_tls_without_starttls_is_a_RuntimeError_as_in_73(self):
        self._with(extensions=())
        with self.assertRaisesRegex(RuntimeError, 'TLS is required'):
            self._mailer(force_tls=True).send(FROM, TO, TEXT)
        self.assertNotIn('sendmail', self._names())

    def _socketpair(self):
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        return ours

    def test_a_plain_socket_outweighs_a_starttls_claimed(self):
        # The client says STARTTLS went well, but its socket is plain.
        from zope.sendmail.interfaces import MailerConfigurationError
        self._with(sock=self._socketpair())
        with self.assertRaises(MailerConfigurationError):
            self._send_with_credentials()
        self.assertNotIn('login', self._names())
        self.assertIn('starttls', self._names())

    def test_in_clear_to_a_loopback_peer(self):
        listener = socket.create_server(('127.0.0.1', 0))
        self.addCleanup(listener.close)
        sock = socket.create_connection(listener.getsockname(), timeout=5)
        self.addCleanup(sock.close)
        self._with(extensions=('auth',), sock=sock)
        self._send_with_credentials()
        self.assertIn(('login', 'jane', 'secret'), self.calls)
        # Not to a peer without a loopback address (here: a Unix socket).
        from zope.sendmail.interfaces import MailerConfigurationError
        self.calls[:] = []
        self._with(sock=self._socketpair())
        with self.assertRaises(MailerConfigurationError):
            self._send_with_credentials()
        self.assertNotIn('login', self._names())

    def test_implicit_tls_with_a_plain_socket_is_refused(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        self._with(sock=self._socketpair())
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'implicit_tls .* is not encrypted'):
            self._mailer(implicit_tls=True).send(FROM, TO, TEXT)
        self.assertEqual(self._names(), ['smtp', 'close'])

    def test_implicit_tls_of_a_client_without_a_socket_is_believed(self):
        self._send_with_credentials(implicit_tls=True)
        # No STARTTLS on a connection encrypted from the first byte.
        self.assertNotIn('starttls', self._names())
        self.assertIn(('login', 'jane', 'secret'), self.calls)


class MockTests(unittest.TestCase):
    """Mocks as 7.3's users set them: as much of smtplib as is asked."""

    def _mailer(self, client, **kw):
        from zope.sendmail.mailer import SMTPMailer
        mailer = SMTPMailer('relay.example.com', 2525, **kw)
        mailer.smtp = mock.Mock(return_value=client)
        return mailer

    def test_a_mock_gets_sendmail(self):
        client = mock.Mock()
        client.ehlo.return_value = (250, b'ok')
        mailer = self._mailer(client, username='jane', password='secret')
        mailer.send(FROM, TO, TEXT)
        mailer.smtp.assert_called_once_with('relay.example.com', '2525',
                                            timeout=10)
        client.login.assert_called_once_with('jane', 'secret')
        client.sendmail.assert_called_once_with(FROM, TO, TEXT)
        client.quit.assert_called_once_with()

    def test_a_mock_with_smtplibs_spec_too(self):
        # It passes isinstance() for an smtplib.SMTP, but would answer
        # MAIL with a mock: its type decides.
        client = mock.Mock(spec=smtplib.SMTP)
        client.ehlo.return_value = (250, b'ok')
        self._mailer(client).send(FROM, TO, TEXT)
        client.sendmail.assert_called_once_with(FROM, TO, TEXT)
        client.mail.assert_not_called()


class DeliveryTests(ClientTestBase):
    """Deliveries through a mailer with a client of the user's."""

    def setUp(self):
        super().setUp()
        transaction.abort()
        self.addCleanup(transaction.abort)
        from zope.sendmail.events import dispatcher
        from zope.sendmail.smtp.connectioncache import clear_all
        self.addCleanup(dispatcher.stop)
        self.addCleanup(clear_all)

    def _sent(self):
        return [call[1:] for call in self.calls if call[0] == 'sendmail']

    def test_direct_delivery(self):
        from zope.sendmail.delivery import DirectMailDelivery
        DirectMailDelivery(self._mailer()).send(FROM, list(TO), TEXT)
        transaction.commit()
        [(fromaddr, toaddrs, message)] = self._sent()
        self.assertEqual((fromaddr, list(toaddrs)), (FROM, list(TO)))
        # What a delivery sends: bytes, CRLF, with a Message-Id.
        self.assertIn(b'\r\nSubject: 7.3\r\n\r\nA message', message)
        self.assertIn(b'Message-Id: <', message)

    def test_queue_processor(self):
        from zope.sendmail.delivery import QueuedMailDelivery
        from zope.sendmail.queue import QueueProcessorThread
        tmp = tempfile.mkdtemp(prefix='zope.sendmail-compat73-')
        self.addCleanup(shutil.rmtree, tmp)
        queue = os.path.join(tmp, 'queue')
        QueuedMailDelivery(queue).send(FROM, list(TO), TEXT)
        transaction.commit()
        thread = QueueProcessorThread()
        thread.setMailer(self._mailer())
        thread.setQueuePath(queue)
        thread.run(forever=False)
        [(fromaddr, toaddrs, message)] = self._sent()
        self.assertEqual((fromaddr, list(toaddrs)), (FROM, list(TO)))
        self.assertIs(type(message), bytes)  # never a view of the file
        self.assertTrue(message.startswith(b'Message-Id: <'), message)
        self.assertEqual(os.listdir(os.path.join(queue, 'new')), [])


class SMTPAttributeTests(unittest.TestCase):

    def test_a_subclass_factory_is_kept_with_implicit_tls(self):
        from zope.sendmail.mailer import SMTPMailer

        class Mailer(SMTPMailer):
            smtp = Client

        self.assertIs(Mailer(implicit_tls=True).smtp, Client)
        self.assertIs(Mailer().smtp, Client)

    def test_None_is_the_default_as_in_73(self):
        from zope.sendmail.mailer import SMTPMailer

        class Mailer(SMTPMailer):
            smtp = None  # 7.3's own class attribute

        self.assertIs(Mailer().smtp, smtplib.SMTP)
        self.assertIs(Mailer(implicit_tls=True).smtp, smtplib.SMTP_SSL)


class SmtplibSubclassBase(unittest.TestCase):

    def setUp(self):
        self.made = []

    def _recording(self, base=smtplib.SMTP):
        made = self.made

        class Recording(base):
            def __init__(self, *args, **kw):
                made.append((args, kw))
                super().__init__(*args, **kw)

        return Recording

    def _mailer(self, smtp, **kw):
        from zope.sendmail.mailer import SMTPMailer
        server = self.layer.server
        mailer = SMTPMailer(server.host, server.port, timeout=5, **kw)
        mailer.smtp = smtp
        return mailer


class SmtplibSubclassTests(SmtplibSubclassBase):
    """A subclass of smtplib's classes is called as 7.3 called it, then
    speaks SMTP as smtplib's own classes do (MAIL, RCPT, DATA)."""

    layer = SMTPServerLayer

    def test_called_as_73_then_speaking_smtp(self):
        server = self.layer.server
        server.refuse('carol@example.com')
        refused = self._mailer(self._recording()).send(FROM, TO, TEXT)
        self.assertEqual(self.made, [((server.host, str(server.port)),
                                      {'timeout': 5})])
        self.assertEqual(list(refused), ['carol@example.com'])
        [message] = server.messages
        self.assertEqual(message.rcpt_tos, ['bob@example.com'])
        self.assertIn(b'Subject: 7.3\r\n\r\nA message', message.data)

    def test_a_factory_function_returning_an_SMTP(self):
        server = self.layer.server

        def factory(host, port, timeout):
            return smtplib.SMTP(host, int(port), timeout=timeout)

        self.assertEqual(self._mailer(factory).send(FROM, TO, TEXT), {})
        self.assertEqual(sorted(server.messages[0].rcpt_tos), sorted(TO))

    def test_implicit_tls_with_a_plain_subclass_is_refused(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'is not encrypted'):
            self._mailer(self._recording(), implicit_tls=True).send(
                FROM, TO, TEXT)
        self.assertEqual(self.layer.server.messages, [])


class SmtplibSSLSubclassTests(SmtplibSubclassBase):
    """An `smtplib.SMTP_SSL` subclass gets the mailer's TLS context, which
    verifies the relay (7.3 gave none: smtplib's verifies nothing)."""

    layer = Compat73ImplicitTLSLayer

    def test_verified_with_the_mailers_context(self):
        server = self.layer.server
        mailer = self._mailer(self._recording(smtplib.SMTP_SSL),
                              implicit_tls=True, tls_ca_file=server.ca_file)
        self.assertEqual(mailer.send(FROM, TO, TEXT), {})
        self.assertTrue(server.messages[0].tls)
        [(args, kw)] = self.made
        self.assertEqual(args, (server.host, str(server.port)))
        self.assertIs(kw['context'], mailer.tls_context())

    def test_an_unknown_authority_is_refused(self):
        from zope.sendmail.interfaces import MailerConfigurationError
        with self.assertRaisesRegex(MailerConfigurationError,
                                    'certificate did not verify'):
            self._mailer(self._recording(smtplib.SMTP_SSL),
                         implicit_tls=True).send(FROM, TO, TEXT)
        self.assertEqual(self.layer.server.messages, [])
