"""The relay side: talking SMTP to a relay.

`mailer.SMTPMailer` holds a relay's settings and opens connections
(`connection`) over smtplib's client, bounded against a hostile relay
(`client`), with STARTTLS and AUTH (`tlsauth`, `oauth2`), sending messages
in transactions that follow the relay's recipient caps (`transaction`,
`datastream`).  `classify` turns every failure into a permanent, temporary
or configuration error, and is the only reader of reply texts.
`connectioncache` keeps a direct delivery's connection between
transactions; `single` drives the mailers written for 7.3, which send one
message at a time, and `client73` the SMTP clients of a mailer's own
``smtp`` factory, as 7.3 drove them.  Nothing here knows of queues or
transactions.
"""
