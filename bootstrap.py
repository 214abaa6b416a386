#!/usr/bin/env python3
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
"""Bootstrap a buildout for this checkout (standard library only).

Steps:

1. create a virtualenv ``.venv`` next to this script (with pip);
2. pip-install into it the zc.buildout, setuptools, pip and wheel versions
   pinned in the ``[versions]`` section of ``buildout.cfg``;
3. run ``buildout bootstrap`` (writes ``bin/buildout``) and then
   ``bin/buildout`` (with ``-N`` once a first run has succeeded).

Every step is skipped when it is already done: a second run only checks the
installed zc.buildout version and compares a hash of ``buildout.cfg`` and
``setup.py`` with the stamp written after the last successful buildout run.
``--force`` re-runs everything.
"""
import argparse
import configparser
import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv


HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, '.venv')
BIN = os.path.join(HERE, 'bin')
BUILDOUT_CFG = os.path.join(HERE, 'buildout.cfg')
STAMP = os.path.join(VENV, '.bootstrap-stamp')
# Files whose change means buildout has to run again.
STAMPED_FILES = ('buildout.cfg', 'setup.py')

# Used only when buildout.cfg does not pin them in [versions].
DEFAULT_PINS = {
    'zc.buildout': '6.0.1',
    'setuptools': '84.2.1',
    'pip': '26.3',
    'wheel': '0.48.0',
}


class BootstrapError(Exception):
    pass


def say(msg):
    print('bootstrap: ' + msg, flush=True)


def venv_python():
    if os.name == 'nt':
        return os.path.join(VENV, 'Scripts', 'python.exe')
    return os.path.join(VENV, 'bin', 'python')


def venv_script(name):
    if os.name == 'nt':
        return os.path.join(VENV, 'Scripts', name + '.exe')
    return os.path.join(VENV, 'bin', name)


def bin_script(name):
    if os.name == 'nt':
        return os.path.join(BIN, name + '-script.py')
    return os.path.join(BIN, name)


def read_pins():
    """The bootstrap pins, taken from buildout.cfg's [versions] section."""
    pins = dict(DEFAULT_PINS)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with open(BUILDOUT_CFG, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as e:
        raise BootstrapError('cannot read %s: %s' % (BUILDOUT_CFG, e))
    except configparser.Error as e:
        raise BootstrapError('cannot parse %s: %s' % (BUILDOUT_CFG, e))
    section = 'versions'
    if parser.has_option('buildout', 'versions'):
        section = parser.get('buildout', 'versions').strip() or section
    if parser.has_section(section):
        for name in pins:
            if parser.has_option(section, name):
                pins[name] = parser.get(section, name).strip()
    return pins


def buildout_env():
    """Environment for buildout runs, minus a known harmless warning."""
    env = dict(os.environ)
    # zc.buildout adds the recipe eggs (zc.recipe.*) to an already imported
    # "zc" namespace package and warns about it each time.
    quiet_zc = 'ignore:Module zc was already imported:UserWarning'
    env['PYTHONWARNINGS'] = ','.join(
        w for w in (env.get('PYTHONWARNINGS'), quiet_zc) if w)
    return env


def run(cmd, quiet=False, **kw):
    """Run cmd from HERE; raise BootstrapError (with output if quiet)."""
    kw.setdefault('cwd', HERE)
    if quiet:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, **kw)
    else:
        proc = subprocess.run(cmd, **kw)
    if proc.returncode != 0:
        if quiet and proc.stdout:
            sys.stderr.write(proc.stdout)
        raise BootstrapError('command failed (exit %d): %s'
                             % (proc.returncode, ' '.join(cmd)))
    return proc


def installed_version(dist):
    """Version of dist in .venv, or None (also if .venv is unusable)."""
    python = venv_python()
    if not os.path.exists(python):
        return None
    try:
        proc = subprocess.run(
            [python, '-c',
             'import sys, importlib.metadata as m\n'
             'try: print(m.version(sys.argv[1]))\n'
             'except m.PackageNotFoundError: pass\n',
             dist],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            cwd=HERE)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def venv_is_usable():
    python = venv_python()
    if not os.path.exists(python):
        return False
    try:
        return subprocess.run(
            [python, '-c', 'import pip'], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=HERE).returncode == 0
    except OSError:
        return False


def ensure_venv(pins, force):
    want = pins['zc.buildout']
    if not force and installed_version('zc.buildout') == want:
        say('.venv ready (zc.buildout %s)' % want)
        return False
    if force or not venv_is_usable():
        say('creating virtualenv %s' % VENV)
        if os.path.isdir(VENV):
            shutil.rmtree(VENV)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    reqs = ['%s==%s' % (name, pins[name])
            for name in ('pip', 'setuptools', 'wheel', 'zc.buildout')]
    say('pip install %s' % ' '.join(reqs))
    run([venv_python(), '-m', 'pip', 'install', '--quiet',
         '--disable-pip-version-check'] + reqs, quiet=True)
    got = installed_version('zc.buildout')
    if got != want:
        raise BootstrapError('zc.buildout %s expected in .venv, found %s'
                             % (want, got))
    return True


def config_hash(pins):
    h = hashlib.sha256()
    h.update(('%s|%s\n' % (sys.version_info[:2], sorted(pins.items())))
             .encode())
    for name in STAMPED_FILES:
        path = os.path.join(HERE, name)
        h.update(name.encode() + b'\0')
        try:
            with open(path, 'rb') as f:
                h.update(f.read())
        except OSError:
            h.update(b'<missing>')
        h.update(b'\0')
    return h.hexdigest()


def read_stamp():
    try:
        with open(STAMP, encoding='ascii') as f:
            return f.read().strip()
    except OSError:
        return None


def ensure_buildout(pins, force, venv_changed):
    digest = config_hash(pins)
    up_to_date = (not force and not venv_changed
                  and read_stamp() == digest
                  and os.path.exists(bin_script('test'))
                  and os.path.exists(bin_script('buildout')))
    if up_to_date:
        say('buildout up to date (buildout.cfg and setup.py unchanged)')
        return
    if os.path.exists(STAMP):
        os.remove(STAMP)

    if force or venv_changed or not os.path.exists(bin_script('buildout')):
        say('buildout bootstrap (writes bin/buildout)')
        run([venv_script('buildout'), '-c', BUILDOUT_CFG, 'bootstrap'],
            quiet=True, env=buildout_env())

    cmd = [venv_python(), bin_script('buildout'), '-c', BUILDOUT_CFG]
    first = force or not os.path.exists(os.path.join(HERE, '.installed.cfg'))
    if not first:
        # Do not look for newer versions: an unchanged checkout is
        # satisfied by what is already installed.
        cmd.append('-N')
    say('running ' + ' '.join(['bin/buildout'] + cmd[4:]))
    run(cmd, env=buildout_env())
    if not os.path.exists(bin_script('test')):
        raise BootstrapError('buildout ran but %s is missing'
                             % bin_script('test'))
    with open(STAMP, 'w', encoding='ascii') as f:
        f.write(digest + '\n')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            'Set up this checkout for development: create the virtualenv '
            '.venv, install the zc.buildout pinned in buildout.cfg into it '
            'and run buildout (which writes bin/test, bin/py and '
            'bin/zope-sendmail). Steps already done are skipped, so a '
            'second run takes a few seconds and changes nothing.'),
        epilog='Then run the tests with: bin/test')
    parser.add_argument(
        '--force', action='store_true',
        help='recreate .venv, reinstall zc.buildout and re-run buildout '
             'even if nothing changed (buildout then also looks for newer '
             'versions of unpinned distributions)')
    args = parser.parse_args(argv)

    if sys.version_info < (3, 10):
        say('error: Python 3.10 or later is required')
        return 2
    started = time.monotonic()
    try:
        pins = read_pins()
        venv_changed = ensure_venv(pins, args.force)
        ensure_buildout(pins, args.force, venv_changed)
    except BootstrapError as e:
        print('bootstrap: error: %s' % e, file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print('bootstrap: interrupted', file=sys.stderr, flush=True)
        return 130
    say('done in %.1fs; run the tests with: bin/test'
        % (time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
