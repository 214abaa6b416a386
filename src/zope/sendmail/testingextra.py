"""The ``testing`` extra: what the test helpers need beyond the package.

`zope.sendmail.testing` and `zope.sendmail.testserver`, for the tests of
applications that send mail, import distributions that the package itself
does not need: `DISTRIBUTIONS`, which ``pip install
'zope.sendmail[testing]'`` installs (the ``test`` extra includes them).
Those modules call `missing` when an import fails, so that the error a user
sees names the extra instead of only the missing module.
"""

#: The top-level modules the test helpers import, which the ``testing``
#: extra brings.
DISTRIBUTIONS = ('zope.testing', 'aiosmtpd', 'cryptography')


class MissingExtraError(ModuleNotFoundError):
    """A module of the ``testing`` extra is not installed."""


def missing(helper, error):
    """Raise `MissingExtraError` if *error*, an `ImportError` raised while
    *helper* (a module name) was imported, is about a module of
    `DISTRIBUTIONS`; otherwise return, and the caller re-raises *error*:
    an import failing for another reason must not be disguised."""
    name = getattr(error, 'name', None) or ''
    for dist in DISTRIBUTIONS:
        if name == dist or name.startswith(dist + '.'):
            raise MissingExtraError(
                f"{helper} needs {dist}, which is not installed: install"
                f" the 'testing' extra (pip install"
                f" 'zope.sendmail[testing]')", name=name) from error
