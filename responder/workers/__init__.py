"""The workers: the pool that feeds the pipeline, and the process it runs in.

``pool`` takes alerts from the queue in order per target. ``process`` is the worker process's
side of the daemon and ``supervisor`` the sink's side: the sink starts the worker process,
feeds it the accepted alerts over ``channel``, and writes what it reports to the journal.
"""
