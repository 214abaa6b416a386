"""Tests of zope.sendmail.stores.postgresql: the queue on PostgreSQL."""
