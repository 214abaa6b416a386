"""Tests of zope.sendmail.processing: the queue processor."""
