"""The ``zope-sendmail`` program and the operators' commands.

`program.ConsoleApp` runs it: the command line (`cmdline`) and the INI
file (`inifile`, with `secretfiles` warning about readable secrets), its
output on stderr (`output`), the queue operations (`queueops`: status,
listing, requeue, purge), and `demo`, the ``bin/demo`` script.
"""
