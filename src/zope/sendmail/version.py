"""The version of the installed zope.sendmail distribution.

Read from the distribution's metadata (pip and buildout both install it),
so that there is one version number: setup.py's.
"""
import importlib.metadata


def version():
    """The installed version, or ``'unknown'`` when this code is imported
    from a checkout that was never installed (there is no metadata)."""
    try:
        return importlib.metadata.version('zope.sendmail')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'
