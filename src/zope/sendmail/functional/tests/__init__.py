"""End-to-end tests: processors in child processes, Postfix, NFS clients,
memory, and zope.sendmail 7.3 compatibility."""
