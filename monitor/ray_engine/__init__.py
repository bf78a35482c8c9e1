"""`tracewatch run --engine ray`: the same pipeline as one process, spread over a Ray cluster.

The work that grows with traffic runs in Ray Data (reading and adapting the dumps, redacting
and summarizing, the per-account rollup); what needs every account at once (the campaign
step, the judge, the queue) runs on the driver over the one DuckDB file, through the same
functions `tracewatch run` uses. Ray is an optional extra: `pip install 'tracewatch[ray]'`.
"""

from tracewatch.monitor.ray_engine.driver import RayOptions, RayRunReport, run_on_ray

__all__ = ["RayOptions", "RayRunReport", "run_on_ray"]
