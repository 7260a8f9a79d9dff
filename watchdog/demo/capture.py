"""Live baseline capture: scrape V1's endpoint for a window through the ``scrape`` source
and store one baseline per metric with the same code as ``rollout-watchdog baseline
capture`` (:func:`watchdog.baseline.capture`, :meth:`Journal.save_baseline`).

(``baseline capture`` reads recorded scenarios only; live capture from a source is not in
the CLI yet, so the demo does it here.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from watchdog import baseline as baselines
from watchdog.clock import SystemClock
from watchdog.config.schema import Module
from watchdog.errors import SourceError
from watchdog.journal.store import Journal
from watchdog.model import Version
from watchdog.sources.scrape import ScrapeSource


def capture_live(journal: Journal, module: Module, v1_url: str, seconds: float,
                 step: float, progress: Callable[[float], None] | None = None
                 ) -> list[baselines.Baseline]:
    """Scrape V1 every ``step`` seconds for ``seconds`` and store a baseline per metric."""
    clock = SystemClock()
    source = ScrapeSource({module.name: {"v1": v1_url}}, timeout=2.0, clock=clock)
    began = clock.now()
    errors: list[str] = []  # a failed scrape or two is tolerated; the fetch must work
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                source.scrape(module)
            except SourceError as err:
                errors.append(str(err))
            left = deadline - time.monotonic()
            if progress is not None:
                progress(min(1.0, 1.0 - left / seconds))
            if left <= 0:
                break
            time.sleep(min(step, left))
        end = clock.now() + 1e-6
        store = source.fetch(module, began - 1.0, end)
    except SourceError as err:
        raise SourceError(f"baseline capture: V1 at {v1_url} could not be scraped: {err}"
                          ) from err
    finally:
        source.close()
    saved: list[baselines.Baseline] = []
    now = clock.now()
    for metric in module.metrics:
        series = store.get(Version.V1, metric)
        try:
            b = baselines.capture(module.name, metric,
                                  zip(series.t.tolist(), series.v.tolist(), strict=True),
                                  began, end, f"scrape:{v1_url}", captured_at=now)
        except baselines.EmptyBaseline:
            continue
        saved.append(journal.save_baseline(b))
    if not saved:
        raise SourceError(f"baseline capture: no V1 samples from {v1_url} in {seconds:g}s"
                          + (f" ({errors[-1]})" if errors else ""))
    return saved
