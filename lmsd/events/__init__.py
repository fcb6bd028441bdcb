"""The event bus: JetStream streams as code (more in later issues: outbox, consumers)."""
