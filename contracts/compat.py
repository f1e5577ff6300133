"""Schema generation and the backward-compatibility check of committed JSON Schemas.

``python -m contracts.compat`` rewrites ``contracts/schemas/``. A change breaks an old reader when
it removes a property the old schema had, makes a new property required, or changes the type of
an existing one; :func:`breaking_changes` lists such changes.
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


def _shape(prop: dict[str, Any]) -> Any:
    """What a reader relies on in a property: its type and reference, not its text."""
    return {k: v for k, v in prop.items() if k not in {"title", "description", "default", "examples"}}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
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
