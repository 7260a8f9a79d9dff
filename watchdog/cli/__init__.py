"""The ``rollout-watchdog`` command line."""
