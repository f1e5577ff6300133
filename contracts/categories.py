"""The request categories (lĩnh vực), read from configuration so that new ones need no code."""

import json
from functools import cache
from importlib import resources

from pydantic import BaseModel


class Category(BaseModel):
    code: str
    vi: str
    en: str


@cache
def load(path: str | None = None) -> dict[str, Category]:
    """Categories by code, from ``path`` or the file shipped with the contracts."""
    if path:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    else:
        data = json.loads(resources.files("contracts").joinpath("data/categories.json").read_text("utf-8"))
    return {c["code"]: Category(**c) for c in data["categories"]}
