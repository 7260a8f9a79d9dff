"""rollout-watchdog: guards staged rollouts of V2 beside V1."""

__version__ = "0.1.0"
