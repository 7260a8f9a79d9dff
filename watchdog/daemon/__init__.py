"""The long-running daemon: configuration, scheduler, service, actuation outbox."""
