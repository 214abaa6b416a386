"""Processing a queue: relaying what it holds, as fast as the relay allows.

`thread.QueueProcessorThread` repeats passes (`processor.QueueProcessor`)
until stopped; a pass (`passes`) claims the messages due, oldest first,
sends them over as many connections as its `scheduling.RelaySchedule`
allows, and `disposition` decides what becomes of each by the outcome,
with backoff from `retry`.
"""
