"""``python -m rollout_watchdog``: the same as the ``rollout-watchdog`` command."""

from rollout_watchdog.launcher import main

main()
