"""Tests of zope.sendmail.testserver: the SMTP test server."""
