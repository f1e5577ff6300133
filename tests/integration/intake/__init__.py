"""Intake against the real Kafka and PostgreSQL, over real HTTP."""
