"""An in-process SMTP server and zope.testrunner layers for mail tests.

This package module owns the public API of the SMTP test server and its
two stock layers: :class:`SMTPTestServer` (:mod:`.server`), an
``aiosmtpd`` server on 127.0.0.1 in a background thread that records every
accepted message exactly as it arrived on the wire (:class:`Message`,
:mod:`.protocol`), counts connections, speaks STARTTLS, implicit TLS
(certificates from :mod:`.certs`), AUTH PLAIN/LOGIN and XOAUTH2
(:mod:`.xoauth2`) and SMTPUTF8 on demand, keeps a transcript of every line
(:mod:`.transcript`), and injects faults on demand (:data:`DROP_POINTS`
and the rest: :mod:`.faults`); plus
:func:`make_layer` (:mod:`.layer`) and the layers :class:`SMTPServerLayer`
and :class:`TLSSMTPServerLayer`, which run one server per layer and reset
it around every test.
"""
from zope.sendmail import testingextra


try:
    from zope.sendmail.testserver.faults import DROP_POINTS
    from zope.sendmail.testserver.layer import make_layer
    from zope.sendmail.testserver.protocol import Message
    # Not public; here so tests can patch it where it always was.
    from zope.sendmail.testserver.protocol import _Controller  # noqa: F401
    from zope.sendmail.testserver.server import SMTPTestServer
except ImportError as e:
    # aiosmtpd and cryptography come with the 'testing' extra.
    testingextra.missing(__name__, e)
    raise


__all__ = [
    'DROP_POINTS',
    'Message',
    'SMTPServerLayer',
    'SMTPTestServer',
    'TEST_PASSWORD',
    'TEST_USER',
    'TLSSMTPServerLayer',
    'make_layer',
]

#: Credentials of :class:`TLSSMTPServerLayer`.
TEST_USER, TEST_PASSWORD = 'testuser', 'testpassword'

# Built here, not in .layer: a layer's dotted name is its creator's module.
SMTPServerLayer = make_layer(
    'SMTPServerLayer', 'Plain SMTP test server, no TLS, no AUTH.')
TLSSMTPServerLayer = make_layer(
    'TLSSMTPServerLayer', 'SMTP test server with STARTTLS and AUTH '
    '(TEST_USER/TEST_PASSWORD, offered only after STARTTLS).',
    starttls=True, auth={TEST_USER: TEST_PASSWORD})
