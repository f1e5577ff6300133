"""Schema generation and the backward-compatibility check of committed JSON Schemas.

``python -m contracts.compat`` rewrites ``contracts/schemas/``. A change breaks an old reader when
it removes a property the old schema had, makes a new property required, changes the type of an
existing one, lets a string be longer than it was bounded to, or adds a kind of event to a topic
(an older reader refuses the kind it does not know, and dead-letters it: its readers are deployed
first); :func:`breaking_changes` lists such changes. A bound added narrows only what writers may
send, which no reader minds.
"""

import json
import sys
from pathlib import Path
from typing import Any

from contracts.events import SCHEMAS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def current() -> dict[str, dict[str, Any]]:
    return {name: adapter.json_schema(mode="serialization") for name, adapter in SCHEMAS.items()}


def _models(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    models = dict(schema.get("$defs", {}))
    if "properties" in schema:
        models[schema.get("title", "<root>")] = schema
    return models


_NOT_RELIED_ON = {"title", "description", "default", "examples", "maxLength"}


def _shape(prop: Any) -> Any:
    """What a reader relies on in a property: its type and reference, not its text, nor a length
    bound (checked apart: a bound added only narrows what writers send)."""
    if isinstance(prop, list):
        return [_shape(p) for p in prop]
    if not isinstance(prop, dict):
        return prop
    return {k: _shape(v) for k, v in prop.items() if k not in _NOT_RELIED_ON}


def _max_length(prop: dict[str, Any]) -> int | None:
    """The longest string a property allows, if it is bounded (directly or as a member of anyOf)."""
    bounds = [prop.get("maxLength")] + [p.get("maxLength") for p in prop.get("anyOf", []) if isinstance(p, dict)]
    return min((b for b in bounds if b is not None), default=None)


def _kinds(schema: dict[str, Any]) -> set[str]:
    """The kinds of event a topic's schema names (its discriminator's values), if it is a union."""
    return set(schema.get("discriminator", {}).get("mapping", {}))


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = [f"event type {kind} added: an older reader dead-letters it; deploy its readers first"
                for kind in sorted(_kinds(new) - _kinds(old)) if _kinds(old)]
    new_models = _models(new)
    for model, old_schema in _models(old).items():
        new_schema = new_models.get(model)
        if new_schema is None:
            problems.append(f"{model}: model removed")
            continue
        old_props, new_props = old_schema.get("properties", {}), new_schema.get("properties", {})
        for name, prop in old_props.items():
            if name not in new_props:
                problems.append(f"{model}.{name}: removed")
            elif _shape(prop) != _shape(new_props[name]):
                problems.append(f"{model}.{name}: type changed")
            elif (bound := _max_length(prop)) is not None and (_max_length(new_props[name]) or bound + 1) > bound:
                problems.append(f"{model}.{name}: longer strings allowed than a reader takes")
        for name in set(new_schema.get("required", ())) - set(old_schema.get("required", ())):
            problems.append(f"{model}.{name}: newly required")
    return problems


def write() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in current().items():
        path = SCHEMA_DIR / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n", "utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {len(SCHEMAS)} schemas to {SCHEMA_DIR}", file=sys.stderr)
