"""Helpers for the tests of applications that send mail.

`RecordingMailer` is an `IMailer` that sends nothing and keeps every message
in its ``outbox``.  `ZCMLLayer` is a zope.testrunner layer that loads a ZCML
file and undoes everything at the end; `MailLayer` is one that loads this
package's configuration and registers, as the ``Mail`` delivery, a direct
delivery through a recording mailer -- so a test sends through the real
transactional machinery and then reads the outbox.  For tests that need a
real SMTP server, see `zope.sendmail.testserver`.
"""
import email
import email.policy
import threading

import zope.component
import zope.configuration.xmlconfig
from zope.interface import implementer

from zope.sendmail import testingextra
from zope.sendmail.message import crlf
from zope.sendmail.message import message_id_of
from zope.sendmail.interfaces import IMailDelivery
from zope.sendmail.interfaces import IMailer
from zope.sendmail.interfaces import IMailerConnection


try:
    import zope.testing.cleanup
except ImportError as e:
    testingextra.missing(__name__, e)
    raise


class SentMessage:
    """A message a `RecordingMailer` was given."""

    def __init__(self, fromaddr, toaddrs, data):
        self.fromaddr = fromaddr
        self.toaddrs = tuple(toaddrs)
        self.data = data

    def __repr__(self):
        return (f'<SentMessage {self.messageId} from {self.fromaddr}'
                f' to {", ".join(self.toaddrs)}>')

    @property
    def messageId(self):
        return message_id_of(self.data)

    @property
    def message(self):
        """The message parsed, as an `email.message.EmailMessage`."""
        return email.message_from_bytes(self.data,
                                        policy=email.policy.default)


@implementer(IMailer)
class RecordingMailer:
    """A mailer for tests: what it is given to send lands in ``outbox``."""

    def __init__(self):
        self.outbox = []
        self._lock = threading.Lock()

    def __repr__(self):
        return f'<RecordingMailer with {len(self.outbox)} message(s)>'

    def connect(self):
        return RecordingConnection(self)

    def vote(self, fromaddr, toaddrs, message):
        pass

    def send(self, fromaddr, toaddrs, message):
        if isinstance(message, str):
            message = message.encode('utf-8')
        elif not isinstance(message, bytes):
            message = bytes(message)  # the processor's memoryview
        with self._lock:
            self.outbox.append(SentMessage(fromaddr, toaddrs, crlf(message)))
        return {}

    def abort(self):
        pass

    def clear(self):
        with self._lock:
            del self.outbox[:]


@implementer(IMailerConnection)
class RecordingConnection:
    """A "connection" of a `RecordingMailer`."""

    max_recipients = None  # the outbox takes any number
    relay = 'outbox'  # no relay: logs and metrics name the outbox

    def __init__(self, mailer):
        self.mailer = mailer

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def send(self, fromaddr, toaddrs, message):
        return self.mailer.send(fromaddr, toaddrs, message)

    def close(self):
        pass


class ZCMLLayer:
    """A layer that loads *filename* of *package* and, when torn down,
    undoes it with ``zope.testing.cleanup``.

    Give each layer a *name* unique in the test run (and, as zope.testrunner
    wants, set it as a module attribute under that name).
    """

    def __init__(self, package, filename='configure.zcml', name=None):
        self.package = package
        self.filename = filename
        self.__name__ = name or f'{package.__name__}:{filename}'
        self.__module__ = package.__name__
        self.__bases__ = ()

    def __repr__(self):
        return f'<ZCMLLayer {self.__name__}>'

    def setUp(self):
        zope.testing.cleanup.cleanUp()
        self.context = zope.configuration.xmlconfig.file(
            self.filename, package=self.package)

    def tearDown(self):
        zope.testing.cleanup.cleanUp()

    def testSetUp(self):
        pass

    def testTearDown(self):
        pass


class _MailLayer(ZCMLLayer):
    """This package's configuration, and a ``Mail`` delivery that records
    what it sends in ``mailer.outbox`` (emptied before each test)."""

    def __init__(self):
        import zope.sendmail
        super().__init__(zope.sendmail, 'configure.zcml', 'MailLayer')
        self.__module__ = __name__
        self.mailer = RecordingMailer()

    def setUp(self):
        from zope.sendmail.delivery import DirectMailDelivery
        super().setUp()
        self.delivery = DirectMailDelivery(self.mailer)
        zope.component.provideUtility(self.delivery, IMailDelivery, 'Mail')

    def testSetUp(self):
        self.mailer.clear()


MailLayer = _MailLayer()
