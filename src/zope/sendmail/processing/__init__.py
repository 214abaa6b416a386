"""Processing a queue: relaying what it holds, as fast as the relay allows.

`thread.QueueProcessorThread` repeats passes (`processor.QueueProcessor`)
until stopped, waiting between them on its store's waiter; `registry`
holds the threads running in this process.  A pass (`passes`) asks the
queue's store (`IQueueStore`) for the messages due, oldest first, claims
and sends them over as many connections as its `scheduling.RelaySchedule`
allows, and `disposition` decides what becomes of each by the outcome,
with backoff from `retry`.  Nothing here knows how a store keeps its
messages.
"""
