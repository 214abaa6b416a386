##############################################################################
#
# Copyright (c) Zope Foundation and Contributors.
# All Rights Reserved.
#
# This software is subject to the provisions of the Zope Public License,
# Version 2.1 (ZPL).  A copy of the ZPL should accompany this distribution.
# THIS SOFTWARE IS PROVIDED "AS IS" AND ANY AND ALL EXPRESS OR IMPLIED
# WARRANTIES ARE DISCLAIMED, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
# WARRANTIES OF TITLE, MERCHANTABILITY, AGAINST INFRINGEMENT, AND FITNESS
# FOR A PARTICULAR PURPOSE.
#
##############################################################################
"""Setup for zope.sendmail.

``zope`` is a native (PEP 420) namespace package: there is no
``src/zope/__init__.py`` and there must never be one.
"""
import os

from setuptools import find_namespace_packages
from setuptools import setup


HERE = os.path.dirname(os.path.abspath(__file__))


def read(*names):
    """Return the text of a file next to setup.py, or '' if it is absent."""
    path = os.path.join(HERE, *names)
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except OSError:
        return ''


long_description = '\n\n'.join(
    text for text in (read('README.txt'), read('CHANGES.txt')) if text
)

# What zope.sendmail.testing and zope.sendmail.testserver import, for the
# tests of applications that send mail: pip install zope.sendmail[testing].
TESTING_REQUIRE = [
    'zope.testing',
    'aiosmtpd',
    'cryptography',
]

# Metrics for Prometheus (zope.sendmail.monitoring.metrics):
# pip install 'zope.sendmail[metrics]'.  0.20 is the first whose
# start_http_server returns the server and its thread, which the
# zope-sendmail daemon stops cleanly.
METRICS_REQUIRE = [
    'prometheus_client >= 0.20',
]

TESTS_REQUIRE = TESTING_REQUIRE + [
    'zope.testrunner',
    # The property test of what send() accepts (tests/test_address_property)
    # generates addresses full of look-alike and control characters.
    'hypothesis',
    # The PostgreSQL store's tests run against a real server; the binary
    # wheels bundle libpq, so no headers or compiler are needed.
    'psycopg[binary] >= 3.2',
] + METRICS_REQUIRE

# A queue on PostgreSQL (zope.sendmail.stores.postgresql):
# pip install 'zope.sendmail[postgresql]'.  psycopg 3 needs a libpq on the
# machine; 'psycopg[binary]' brings its own.
POSTGRESQL_REQUIRE = [
    'psycopg >= 3.2',
]

# The API reference documents the test helpers too: they must import.
DOCS_REQUIRE = TESTING_REQUIRE + METRICS_REQUIRE + [
    'Sphinx',
    'repoze.sphinx.autointerface',
    'furo',
]

setup(
    name='zope.sendmail',
    version='8.0.dev0',
    description=(
        'Zope transactional e-mail sending '
        '(queued and direct delivery over SMTP)'
    ),
    long_description=long_description,
    long_description_content_type='text/x-rst',
    author='Zope Foundation and Contributors',
    author_email='zope-dev@zope.dev',
    url='https://github.com/zopefoundation/zope.sendmail',
    project_urls={
        'Source': 'https://github.com/zopefoundation/zope.sendmail',
        'Documentation': 'https://zopesendmail.readthedocs.io/',
        'Issues': 'https://github.com/zopefoundation/zope.sendmail/issues',
        'Changelog': ('https://raw.githubusercontent.com/zopefoundation/'
                      'zope.sendmail/master/CHANGES.txt'),
    },
    # An SPDX expression (PEP 639): no license classifier goes with it.
    license_expression='ZPL-2.1',
    license_files=['LICENSE.txt', 'COPYRIGHT.txt'],
    keywords='zope mail smtp transaction queue maildir',
    classifiers=[
        'Development Status :: 4 - Beta',
        'Environment :: Web Environment',
        'Framework :: Zope :: 3',
        'Intended Audience :: Developers',
        'Natural Language :: English',
        'Operating System :: OS Independent',
        'Programming Language :: Python',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'Programming Language :: Python :: Implementation :: CPython',
        'Topic :: Communications :: Email',
        'Topic :: Internet :: WWW/HTTP',
    ],
    package_dir={'': 'src'},
    packages=find_namespace_packages('src', include=['zope.*']),
    include_package_data=True,
    package_data={
        '': ['*.txt', '*.zcml'],
    },
    zip_safe=False,
    python_requires='>=3.10',
    install_requires=[
        'transaction',
        'zope.interface',
        'zope.schema',
        'zope.component',
        'zope.configuration',
        'zope.security',
        'zope.i18nmessageid',
        'zope.processlifetime',
        'zope.event',
        # IDNA 2008 with the UTS #46 mapping for Unicode domains; 3.7
        # fixed a denial of service in idna.encode on crafted input.
        'idna >= 3.7',
    ],
    extras_require={
        'testing': TESTING_REQUIRE,
        'test': TESTS_REQUIRE,
        'docs': DOCS_REQUIRE,
        'postgresql': POSTGRESQL_REQUIRE,
        'metrics': METRICS_REQUIRE,
    },
    entry_points={
        'console_scripts': [
            'zope-sendmail = zope.sendmail.queue:run',
        ],
    },
)
