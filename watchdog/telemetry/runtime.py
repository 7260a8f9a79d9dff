"""The process's own series on a given registry: prometheus_client's standard collectors.

``process_*`` (CPU seconds, resident and virtual memory, open and max file descriptors,
start time; read from ``/proc``, so Linux only: elsewhere the collector yields nothing),
``python_info`` (implementation and version) and ``python_gc_*`` (collections, collected
and uncollectable objects per generation). prometheus_client registers these on its global
registry at import; the daemon serves its own registry, so it adds them there.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def register_runtime_collectors(registry: CollectorRegistry) -> None:
    """Add the process, platform and GC collectors to ``registry`` (once per registry)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
