"""zope.testrunner layers that run an SMTP test server.

This module owns :func:`make_layer`, the factory of zope.testrunner layer
classes that each start one :class:`SMTPTestServer
<zope.sendmail.testserver.server.SMTPTestServer>` for the layer's lifetime
and reset it around every test.  The stock layers built with it live in
:mod:`zope.sendmail.testserver` itself, so their dotted names stay there.
"""
import inspect
import sys

from zope.sendmail.testserver.server import SMTPTestServer


def make_layer(name, doc=None, **server_options):
    """Return a zope.testrunner layer class running its own server.

    The server is ``layer.server`` between the layer's setUp and tearDown
    and is reset before and after every test.  The layer's ``__module__``
    is the caller's, so ``name`` must be unique within the calling module.
    """
    inspect.signature(SMTPTestServer).bind(**server_options)  # fail early

    def setUp(cls):
        cls.server = SMTPTestServer(**server_options).start()

    def tearDown(cls):
        server, cls.server = cls.server, None
        if server is not None:
            server.stop()

    def testSetUp(cls):
        cls.server.reset()

    return type(name, (), {
        # Layers are identified by module and name; no base classes, as
        # zope.testrunner would set those up as layers too.
        '__module__': sys._getframe(1).f_globals.get('__name__', __name__),
        '__doc__': doc or f'SMTP test server layer {server_options!r}',
        'server': None, 'server_options': server_options,
        'setUp': classmethod(setUp), 'tearDown': classmethod(tearDown),
        'testSetUp': classmethod(testSetUp),
        'testTearDown': classmethod(testSetUp),
    })
