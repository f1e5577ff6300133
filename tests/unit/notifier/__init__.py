"""Unit tests of the notifier: pure rules, no I/O."""
