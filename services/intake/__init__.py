"""Intake (tiếp nhận): the channel adapters that turn citizens' messages into RequestReceived."""
