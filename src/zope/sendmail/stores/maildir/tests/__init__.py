"""Tests of zope.sendmail.stores.maildir: the Maildir queue."""
