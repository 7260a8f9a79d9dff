"""rollout-watchdog: guards staged rollouts of V2 beside V1."""

__version__ = "0.1.0"
#: Tells this package from the unrelated PyPI project ``watchdog`` (rollout_watchdog.launcher).
__distribution__ = "rollout-watchdog"
