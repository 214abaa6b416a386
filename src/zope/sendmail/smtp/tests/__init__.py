"""Tests of zope.sendmail.smtp: the relay side."""
