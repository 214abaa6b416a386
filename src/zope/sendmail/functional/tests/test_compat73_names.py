"""Every public name of zope.sendmail 7.3's modules imports from its 7.3
path, and 7.3's ``queue`` helpers behave as 7.3's did.

The names are listed here (7.3 is never imported): for each of 7.3's
modules, the names it defined, then those it imported, which must be the
same objects as where they come from.  Not here: the standard library
modules 7.3 imported (``os``, ``errno``, ``time``, ``socket``,
``random``, ``email``, ``warnings``, ``logging``, ``sys``, ``smtplib``,
``argparse``, ``atexit``, ``configparser``, ``threading``; ``pywintypes``
on Windows, None elsewhere) and the ``zope`` namespace package: they are
not 7.3's, and 7.3's own tests replaced them in its modules to fake the
file system and the clock, which an alias here could not do (this
package's code lives elsewhere).  Nor the private names (``_os_link``,
``_SMTPState``...).
"""
import importlib
import os
import time
import unittest

from zope.sendmail.tests.support.compat73 import CompatTestBase


# What each 7.3 module defined (its own classes, functions, constants).
DEFINED = {
    'delivery': ['AbstractMailDelivery', 'DirectMailDelivery',
                 'MailDataManager', 'QueuedMailDelivery', 'log'],
    'interfaces': ['IDirectMailDelivery', 'IMailDelivery',
                   'IMailQueueProcessor', 'IMaildir', 'IMaildirFactory',
                   'IMaildirMessageWriter', 'IMailer',
                   'IQueuedMailDelivery', 'ISMTPMailer', '_'],
    'mailer': ['SMTPMailer'],
    'maildir': ['Maildir', 'MaildirMessageWriter'],
    'queue': ['ConsoleApp', 'MAX_SEND_TIME', 'QueueProcessorThread',
              'boolean', 'run', 'string_or_none'],
    'vocabulary': ['MailDeliveryNames'],
    'zcml': ['IDeliveryDirective', 'IDirectDeliveryDirective',
             'IMailerDirective', 'IQueuedDeliveryDirective',
             'ISMTPMailerDirective', 'SECURITY_SUPPORT', 'directDelivery',
             'queuedDelivery', 'smtpMailer'],
}

# What each 7.3 module imported by name, and from where: the same object
# must be there.  7.3's zcml module had zope.security's Permission (and
# proxify) when zope.security was installed, which it always is now.
IMPORTED = {
    'delivery': {
        'IDataManagerSavepoint': 'transaction.interfaces',
        'ISavepointDataManager': 'transaction.interfaces',
        'IDirectMailDelivery': 'zope.sendmail.interfaces',
        'IQueuedMailDelivery': 'zope.sendmail.interfaces',
        'Maildir': 'zope.sendmail.maildir',
        'QueueProcessorThread': 'zope.sendmail.queue',
        'implementer': 'zope.interface',
        'gethostname': 'socket',
        'randrange': 'random',
        'strftime': 'time',
        'transaction': None,  # the package itself
    },
    'interfaces': {
        'Attribute': 'zope.interface',
        'Interface': 'zope.interface',
        'MessageFactory': 'zope.i18nmessageid',
        'Bool': 'zope.schema',
        'Float': 'zope.schema',
        'Int': 'zope.schema',
        'Password': 'zope.schema',
        'TextLine': 'zope.schema',
    },
    'mailer': {
        'ISMTPMailer': 'zope.sendmail.interfaces',
        'SMTP': 'smtplib',
        'SMTP_SSL': 'smtplib',
        'SSLError': 'ssl',
        'implementer': 'zope.interface',
        'local': 'threading',
    },
    'maildir': {
        'IMaildir': 'zope.sendmail.interfaces',
        'IMaildirFactory': 'zope.sendmail.interfaces',
        'IMaildirMessageWriter': 'zope.sendmail.interfaces',
        'implementer': 'zope.interface',
        'provider': 'zope.interface',
    },
    'queue': {
        'Maildir': 'zope.sendmail.maildir',
        'SMTPMailer': 'zope.sendmail.mailer',
        'Path': 'pathlib',
        'formataddr': 'email.utils',
        'getaddresses': 'email.utils',
    },
    'vocabulary': {
        'IMailDelivery': 'zope.sendmail.interfaces',
        'IVocabularyFactory': 'zope.schema.interfaces',
        'SimpleTerm': 'zope.schema.vocabulary',
        'SimpleVocabulary': 'zope.schema.vocabulary',
        'directlyProvides': 'zope.interface',
    },
    'zcml': {
        'DirectMailDelivery': 'zope.sendmail.delivery',
        'QueuedMailDelivery': 'zope.sendmail.delivery',
        'QueueProcessorThread': 'zope.sendmail.queue',
        'SMTPMailer': 'zope.sendmail.mailer',
        'IMailDelivery': 'zope.sendmail.interfaces',
        'IMailer': 'zope.sendmail.interfaces',
        'ConfigurationError': 'zope.configuration.exceptions',
        'Path': 'zope.configuration.fields',
        'Permission': 'zope.security.zcml',
        'proxify': 'zope.component.security',
        'getUtility': 'zope.component',
        'handler': 'zope.component.zcml',
        'Interface': 'zope.interface',
        'ASCIILine': 'zope.schema',
        'Float': 'zope.schema',
        'Int': 'zope.schema',
        'TextLine': 'zope.schema',
        # 7.3's was zope.schema's; zope.configuration's accepts more
        # spellings in ZCML and is a subclass of it.
        'Bool': 'zope.schema',
    },
}


def _import(path, name):
    """``from path import name``, as a user's code says it."""
    namespace = {}
    exec(f'from {path} import {name}', namespace)
    return namespace[name]


class NamesTests(unittest.TestCase):

    def test_every_name_7_3_defined_imports_from_its_path(self):
        for module, names in DEFINED.items():
            for name in names:
                with self.subTest(f'zope.sendmail.{module}.{name}'):
                    _import(f'zope.sendmail.{module}', name)

    def test_every_name_7_3_imported_is_the_same_object(self):
        for module, names in IMPORTED.items():
            for name, origin in names.items():
                with self.subTest(f'zope.sendmail.{module}.{name}'):
                    here = _import(f'zope.sendmail.{module}', name)
                    if origin is None:
                        self.assertIs(here, importlib.import_module(name))
                    elif name == 'Bool' and module == 'zcml':
                        self.assertTrue(issubclass(
                            here, _import(origin, name)))
                    else:
                        self.assertIs(here, _import(origin, name))

    def test_the_queue_processor_thread_is_one_class_everywhere(self):
        from zope.sendmail.processing.thread import QueueProcessorThread
        for module in ('queue', 'delivery', 'zcml'):
            self.assertIs(_import(f'zope.sendmail.{module}',
                                  'QueueProcessorThread'),
                          QueueProcessorThread)

    def test_SECURITY_SUPPORT(self):
        from zope.sendmail.zcml import SECURITY_SUPPORT
        self.assertIs(SECURITY_SUPPORT, True)


class QueueHelpersTests(unittest.TestCase):
    """``zope.sendmail.queue.boolean`` and ``string_or_none`` read INI
    values as 7.3's did; the program itself reads them exactly."""

    def test_boolean_is_true_for_what_starts_with_t_y_or_1(self):
        from zope.sendmail.queue import boolean
        for value in ('true', 'True', 'TRUE', 't', 'yes', 'Y', '1', '10',
                      'tomato', 'yellow', True, 1):
            with self.subTest(value=value):
                self.assertIs(boolean(value), True)

    def test_boolean_is_false_for_anything_else(self):
        from zope.sendmail.queue import boolean
        for value in ('false', 'no', '0', 'on', 'off', '', ' true', 'None',
                      'enabled', False, 0, None):
            with self.subTest(value=value):
                self.assertIs(boolean(value), False)

    def test_string_or_none(self):
        from zope.sendmail.queue import string_or_none
        self.assertIsNone(string_or_none('None'))
        for value in ('none', 'NONE', '', ' None', 'x', '/var/mail'):
            with self.subTest(value=value):
                self.assertEqual(string_or_none(value), value)

    def test_the_program_reads_booleans_exactly(self):
        # boolean() is 7.3's, kept for its callers; zope-sendmail refuses
        # a value it does not know, and knows "on" (7.3 took it as false).
        from zope.sendmail.options import parse_bool
        self.assertIs(parse_bool('on'), True)
        with self.assertRaises(ValueError):
            parse_bool('tomato')


class MaxSendTimeTests(CompatTestBase):
    """``MAX_SEND_TIME``: how long a 7.3 processor's claim on a message
    (its ``.sending-`` hard link) is respected, 3 hours as in 7.3."""

    def _queue_claimed(self, age):
        """A message in the queue, claimed by a 7.3 processor *age*
        seconds ago."""
        import transaction

        from zope.sendmail.delivery import QueuedMailDelivery
        QueuedMailDelivery(self.queue).send(
            'alice@example.com', ['bob@example.com'],
            b'Subject: claimed\r\n\r\nHello\r\n')
        transaction.commit()
        new = os.path.join(self.queue, 'new')
        [name] = [n for n in os.listdir(new) if not n.startswith('.')]
        link = os.path.join(new, '.sending-' + name)
        os.link(os.path.join(new, name), link)
        when = time.time() - age
        os.utime(link, (when, when))

    def _one_pass(self):
        from zope.sendmail.mailer import SMTPMailer
        from zope.sendmail.queue import QueueProcessorThread
        server = self.layer.server
        thread = QueueProcessorThread()
        thread.setMailer(SMTPMailer(server.host, server.port, timeout=5))
        thread.setQueuePath(self.queue)
        thread.run(forever=False)
        return server.messages

    def test_three_hours(self):
        from zope.sendmail.queue import MAX_SEND_TIME
        self.assertEqual(MAX_SEND_TIME, 3 * 60 * 60)

    def test_a_claim_younger_than_MAX_SEND_TIME_is_respected(self):
        from zope.sendmail.queue import MAX_SEND_TIME
        self._queue_claimed(MAX_SEND_TIME - 60)
        self.assertEqual(self._one_pass(), [])

    def test_a_claim_older_than_MAX_SEND_TIME_is_taken_over(self):
        from zope.sendmail.queue import MAX_SEND_TIME
        self._queue_claimed(MAX_SEND_TIME + 60)
        [message] = self._one_pass()
        self.assertEqual(message.rcpt_tos, ['bob@example.com'])
