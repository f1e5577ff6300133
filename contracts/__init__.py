"""Shared contracts of the 1022 mesh: the events and commands on Kafka, their topics, ids and schemas.

This package is the only code two services share. Every model here is a pydantic v2 model whose
JSON Schema is committed under ``contracts/schemas/``; a change that would break a reader of those
schemas fails ``tests/unit/test_contract_compat.py``.
"""
