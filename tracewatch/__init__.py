"""tracewatch: finds harms in agent traffic that no single interaction shows.

The installable package maps the repository's top-level folders to subpackages
(`monitor/` -> `tracewatch.monitor`, `trace_adapters/` -> `tracewatch.trace_adapters`, ...)
so a reader finds code by folder name while the install claims only one import name.
"""

__version__ = "0.1.0"
