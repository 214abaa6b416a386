"""Sphinx configuration of the zope.sendmail documentation.

The narrative pages include the package's doctest files (the same files
the tests run) and the API reference is generated from the docstrings, so
the package must be importable: build from a buildout (``bin/docs``), from
tox (``tox -e docs``) or after ``pip install -e '.[docs]'``.  Every build
treats warnings as errors (``-W``).
"""
import datetime
import importlib
import importlib.metadata
import pathlib
import re

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles
from zope.interface.interface import InterfaceClass


logger = logging.getLogger(__name__)

project = 'zope.sendmail'
author = 'Zope Foundation and Contributors'
copyright = f'2007-{datetime.date.today().year}, {author}'
release = importlib.metadata.version('zope.sendmail')
# The short X.Y version.
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
    # Documents zope.interface interfaces (``autointerface``).
    'repoze.sphinx.autointerface',
]

# Only the .rst pages are sources; the package's .txt doctests are
# included into them.
source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = ['_build']

# `name` in docstrings links to the Python object of that name when there
# is one (and is set in italics otherwise).
default_role = 'obj'

autodoc_member_order = 'bysource'
autodoc_default_options = {
    'members': True,
    'show-inheritance': True,
}
# Signatures show the defaults as written in the source.
autodoc_preserve_defaults = True

html_theme = 'furo'
html_title = f'{project} {release}'


class AutoInterfaces(SphinxDirective):
    """``.. autointerfaces:: MODULE``: an ``autointerface`` of every public
    interface that MODULE defines, in source order, and with the
    ``:exceptions:`` flag an ``autoexception`` of every exception it
    defines, so that a new one is documented without anyone having to list
    it here (Sphinx 9's ``automodule`` no longer passes interfaces to
    repoze.sphinx.autointerface)."""

    required_arguments = 1
    option_spec = {'exceptions': directives.flag}

    def run(self):
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        source = self.get_source_info()[0]
        lines = StringList()
        defined = [(name, obj) for name, obj in vars(module).items()
                   if not name.startswith('_')
                   and getattr(obj, '__module__', None) == module_name]
        for name, obj in defined:
            if isinstance(obj, InterfaceClass):
                lines.append(f'.. autointerface:: {module_name}.{name}',
                             source)
                lines.append('', source)
        for name, obj in defined:
            if ('exceptions' in self.options and isinstance(obj, type)
                    and issubclass(obj, BaseException)):
                lines.append(f'.. autoexception:: {module_name}.{name}',
                             source)
                lines.append('', source)
        container = nodes.container()
        nested_parse_with_titles(self.state, lines, container)
        return container.children


def check_narrative(app):
    """Warn (an error with -W) about a narrative doctest of the package
    that no page includes: every one belongs in the documentation."""
    docs = pathlib.Path(app.srcdir)
    package = docs.parent / 'src' / 'zope' / 'sendmail'
    included = set()
    for page in docs.glob('*.rst'):
        included.update(re.findall(
            r'^\.\. include:: \.\./src/zope/sendmail/(\S+\.txt)$',
            page.read_text(encoding='utf-8'), re.M))
    for doctest in sorted(package.glob('*.txt')):
        if doctest.name not in included:
            logger.warning('%s is included by no page of docs/', doctest)


def setup(app):
    app.add_directive('autointerfaces', AutoInterfaces)
    app.connect('builder-inited', check_narrative)
