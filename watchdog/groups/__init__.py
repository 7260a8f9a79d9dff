"""Module groups (issue 20 item 1): components sharing one rollout percentage."""
