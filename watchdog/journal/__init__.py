"""The SQLite journal: decisions (append-only), checkpoints, alert states, baselines."""
