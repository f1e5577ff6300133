"""What-if routing from the command line: ``python -m services.router route --edition hcmc-2021|hcmc-2025``.

Reads JSON lines (``address``, optional ``category`` and ``channel``) from standard input and
writes one JSON line per input: the outcome, the unit, the rule and the reason, through the same
``route()`` the service uses. A line that cannot be read gives a line with ``error`` and the run
goes on; the exit status is 1 when any line was in error.
"""

import argparse
import json
import sys
from typing import TextIO

from services.router.directory import EDITIONS, load_directory
from services.router.routing import Decision, load_rules, route


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Route every line of ``stdin``; returns the exit status."""
    args = _parser().parse_args(argv[1:] if argv and argv[0] == "route" else argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    directory = load_directory(args.edition, args.directory)
    rules = load_rules(args.rules)
    failed = False
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            out = _decide(json.loads(line), directory, rules)
        except (ValueError, TypeError) as error:  # json.JSONDecodeError is a ValueError
            failed = True
            out = {"line": number, "error": str(error)}
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()  # one answer per line as it comes, so the tool works in a pipe
    return 1 if failed else 0


def _decide(request: object, directory, rules) -> dict:
    if not isinstance(request, dict):
        raise TypeError("each line must be a JSON object with 'address'")
    address, category = request.get("address"), request.get("category")
    if not isinstance(address, str) or not address.strip():
        raise ValueError("'address' is missing or not a non-empty string")
    if category is not None and not isinstance(category, str):
        raise ValueError("'category' must be a string")
    decision = route(address, category, directory, rules)
    return _line(request, decision)


def _line(request: dict, d: Decision) -> dict:
    def unit(u):
        return {"id": u.id, "name": u.name, "admin_code": u.admin_code}

    return {"address": request["address"], "category": request.get("category"),
            "channel": request.get("channel"), "outcome": d.outcome, "unit": unit(d.unit),
            "also": [unit(u) for u in d.also], "area": {"code": d.area_code, "name": d.area_name},
            "rule": d.rule, "reason": d.reason, "priority": d.priority,
            "reach_within_seconds": int(d.reach_within.total_seconds()),
            "resolve_within_seconds": int(d.resolve_within.total_seconds()),
            "directory_version": d.directory_version, "rules_version": d.rules_version}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.router route",
                                     description="What-if routing: JSON lines in, one decision per line out.")
    parser.add_argument("--edition", choices=EDITIONS, default="hcmc-2021", help="directory edition")
    parser.add_argument("--directory", help="a directory JSON file of that edition instead of the shipped one")
    parser.add_argument("--rules", help="a rules JSON file instead of the shipped one")
    return parser


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
