"""What every store answers a processor and an operator with, the same
for all stores: the due messages (`DueMessages`, `IQueueStore.due`) and
the state of a queue (`Status`, `IQueueStore.status`).  Plain values; a
store fills them in."""
from zope.interface import implementer

from zope.sendmail.interfaces import IDueMessages
from zope.sendmail.interfaces import IQueueStatus


@implementer(IDueMessages)
class DueMessages:

    def __init__(self, entries, more, next_due):
        self.entries = entries
        self.more = more
        self.next_due = next_due

    def __repr__(self):
        return (f'<DueMessages {len(self.entries)}{" and more" * self.more},'
                f' next due {self.next_due}>')


@implementer(IQueueStatus)
class Status:

    def __init__(self, counts, waiting, next_attempt, oldest, others,
                 details):
        self.counts = counts
        self.waiting = waiting
        self.next_attempt = next_attempt
        self.oldest = oldest
        self.others = others
        self.details = details

    def __repr__(self):
        return f'<Status {self.counts}>'
