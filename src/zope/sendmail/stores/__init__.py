"""Where queued mail waits: the queue stores.

`maildir` is the store on a local (or shared) directory, in the Maildir
layout and the queue file format of zope.sendmail 7.3.
"""
