"""`tracewatch serve`: the webhook and OTLP receiver, and the worker that keeps the monitor
current. Requests are written by one writer thread and acknowledged after the commit; the
worker summarizes, rolls up and judges on its own connection to the same database."""
