"""The Maildir queue: ``tmp/``, ``new/`` and ``cur/`` on a file system.

`store.MaildirStore` is the queue behind `IQueueStore`, and the only code
that knows its files: everything else asks it.  Its parts: `folder.Maildir`
opens a queue (refusing one that others could tamper with, `queuedirs`);
`writer` writes messages into it durably; `names` owns the names of its
files (messages, claims and other side files), their order and the one
listing of ``new/`` and ``cur/``; `envelope` the two envelope lines of a
queue file; `sidefiles` the ``.retry-X`` and ``.reason-X`` beside a
message.  A processor claims a message before sending it (`claim`, or
`linkclaim` without ``fcntl``; the claimed message is `claimed.Claim`),
opening only regular files (`safefiles`) and reporting odd entries once
(`notices`); on a network file system (`netfs`) one processor at a time
holds the queue's lease (`lease`, `leasefile`).  `orphans` and
`privatefiles` keep the side files tidy and private; `scan` lists the
queue for operators.
"""
