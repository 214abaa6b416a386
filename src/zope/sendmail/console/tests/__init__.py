"""Tests of zope.sendmail.console: the zope-sendmail program."""
