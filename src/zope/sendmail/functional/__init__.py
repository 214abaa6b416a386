"""End-to-end tests across processes and systems: processors in child
processes, Postfix, NFS clients, memory, and zope.sendmail 7.3
compatibility.  No code: the tests are in `tests` (the test runner looks
for tests in packages named so).
"""
