"""Tests that use the web pages in a real headless Chromium."""
