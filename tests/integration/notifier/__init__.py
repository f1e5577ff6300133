"""Integration tests of the notifier: real Kafka, PostgreSQL and local stand-ins for the providers."""
