"""Replaying recorded rollouts through the daemon's own judge and state machine."""
