"""Rule unit tests (``rollout-watchdog test``): input series, expected alerts and decisions."""
