"""Intake's pure rules: dialogue, signatures, tokens, validation."""
