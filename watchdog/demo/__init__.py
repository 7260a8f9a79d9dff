"""The demo (``make demo``): simulated V1/V2 services, a baseline, the daemon, a rollback."""
