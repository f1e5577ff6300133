"""Tests of the oversight service."""
