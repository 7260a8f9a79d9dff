"""The rollout state machine: pure functions of (checkpoint, verdict, plan, now)."""
