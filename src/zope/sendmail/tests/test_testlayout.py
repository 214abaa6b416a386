"""The layout of the tests themselves: no module of the package imports a
test module (what tests share lives in ``zope.sendmail.tests.support``),
the support modules hold no tests, and no benchmark script imports another
(they share ``benchmarks/_helpers.py``).

A test module importing another runs the other's module-level code, ties
their layers together and hides where a helper lives; a test class
imported into a second module is even collected twice.  The imports are
read from the source, never executed."""
import ast
import importlib
import inspect
import os
import unittest

import zope.sendmail


PACKAGE = os.path.dirname(os.path.abspath(zope.sendmail.__file__))
# Beside src/ in a checkout or an sdist; not installed with the package.
BENCHMARKS = os.path.join(PACKAGE, os.pardir, os.pardir, os.pardir,
                          'benchmarks')


def module_name(path):
    """The dotted name of the module in *path*, a file of the package."""
    relative = os.path.relpath(path, PACKAGE)[:-len('.py')]
    parts = relative.split(os.sep)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(['zope', 'sendmail', *parts])


def is_test_module(name):
    """A module zope.testrunner loads tests from: ``test*`` in a package
    named ``tests``."""
    parts = name.split('.')
    return (len(parts) > 1 and parts[-2] == 'tests'
            and parts[-1].startswith('test'))


def imported_modules(source, name, is_package=False):
    """The dotted names *source*, the module *name*, imports: for ``from X
    import Y`` both X and X.Y, since Y may be a module; relative imports
    resolved."""
    package = name if is_package else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parent = package.split('.')
                parent = parent[:len(parent) - (node.level - 1)]
                base = '.'.join(parent + ([base] if base else []))
            yield base
            for alias in node.names:
                yield f'{base}.{alias.name}'


def package_modules():
    """(path, dotted name, is a package) of every module of the package."""
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
        for filename in sorted(filenames):
            if filename.endswith('.py'):
                path = os.path.join(dirpath, filename)
                yield path, module_name(path), filename == '__init__.py'


class HelperTests(unittest.TestCase):
    """The functions this module checks the package with."""

    def test_is_test_module(self):
        self.assertTrue(is_test_module('zope.sendmail.tests.test_zcml'))
        self.assertTrue(is_test_module('zope.sendmail.smtp.tests.test_wire'))
        self.assertFalse(is_test_module('zope.sendmail.tests.support'))
        self.assertFalse(is_test_module('zope.sendmail.tests.support.zcml'))
        self.assertFalse(is_test_module(
            'zope.sendmail.functional.tests.processor_main'))
        self.assertFalse(is_test_module('zope.sendmail.testing'))
        self.assertFalse(is_test_module('zope.sendmail.testserver.layer'))

    def test_imported_modules(self):
        source = ('import os.path\n'
                  'from zope.sendmail.tests.test_zcml import Base\n'
                  'from zope.sendmail.smtp.tests import test_wire\n'
                  'from .test_order import X\n'
                  'from . import test_retry\n'
                  'from ..tests import support\n'
                  'def f():\n'
                  '    import zope.sendmail.tests.test_events\n')
        names = set(imported_modules(
            source, 'zope.sendmail.processing.tests.test_x'))
        self.assertEqual(
            {n for n in names if is_test_module(n)},
            {'zope.sendmail.tests.test_zcml',
             'zope.sendmail.smtp.tests.test_wire',
             'zope.sendmail.processing.tests.test_order',
             'zope.sendmail.processing.tests.test_retry',
             'zope.sendmail.tests.test_events'})
        self.assertIn('os.path', names)
        self.assertIn('zope.sendmail.processing.tests.support', names)

    def test_relative_import_in_a_package(self):
        names = set(imported_modules('from . import zcml\n',
                                     'zope.sendmail.tests.support', True))
        self.assertIn('zope.sendmail.tests.support.zcml', names)


class LayoutTests(unittest.TestCase):

    def test_no_module_imports_a_test_module(self):
        found = []
        for path, name, is_package in package_modules():
            with open(path, encoding='utf-8') as f:
                source = f.read()
            found += [f'{name} imports {imported}'
                      for imported in imported_modules(source, name,
                                                       is_package)
                      if is_test_module(imported) and imported != name]
        self.assertEqual(found, [], 'move what is shared into'
                         ' zope.sendmail.tests.support')

    def test_support_modules_hold_no_tests(self):
        support = os.path.join(PACKAGE, 'tests', 'support')
        names = sorted(name[:-len('.py')] for name in os.listdir(support)
                       if name.endswith('.py'))
        self.assertIn('__init__', names)
        found = []
        for name in names:
            dotted = 'zope.sendmail.tests.support'
            if name != '__init__':
                dotted += '.' + name
            if name.startswith('test'):
                found.append(f'{dotted} is named as a test module')
            module = importlib.import_module(dotted)
            for value in vars(module).values():
                if (inspect.isclass(value)
                        and issubclass(value, unittest.TestCase)
                        and value.__module__ == dotted):
                    found += [f'{dotted}.{value.__name__}.{method}'
                              for method in unittest.defaultTestLoader
                              .getTestCaseNames(value)]
        self.assertEqual(found, [])

    @unittest.skipUnless(os.path.isdir(BENCHMARKS), 'not in a checkout')
    def test_no_benchmark_script_imports_another(self):
        scripts = {name[:-len('.py')] for name in os.listdir(BENCHMARKS)
                   if name.endswith('.py') and name != '_helpers.py'}
        self.assertIn('bench_delivery', scripts)
        found = []
        for script in sorted(scripts | {'_helpers'}):
            with open(os.path.join(BENCHMARKS, script + '.py'),
                      encoding='utf-8') as f:
                source = f.read()
            found += [f'{script} imports {imported}'
                      for imported in imported_modules(source, script)
                      if imported.split('.')[0] in scripts]
        self.assertEqual(found, [], 'move what is shared into'
                         ' benchmarks/_helpers.py')
