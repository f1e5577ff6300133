"""The what-if routing CLI, run as a person would: a real process, JSON lines in and out."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
LINES = [
    {"address": "12 Nguyễn Văn Trỗi, P. 12, Q. Phú Nhuận, TP.HCM", "category": "essential_supplies", "channel": "web"},
    "this is not json",
    {"address": "Phường 1", "category": "water", "channel": "zalo"},
    {"category": "water"},
    {"address": "P. Thảo Điền, Q.2", "channel": "phone"},
]


def run(*command: str) -> tuple[int, list[dict]]:
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in LINES)
    done = subprocess.run([sys.executable, "-m", *command], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("edition, unit, code, version", [
    ("hcmc-2021", "hcmc-2021/768", "768", "hcmc-2021.2"),
    ("hcmc-2025", "hcmc-2025/27073", "27073", "hcmc-2025.2"),
])
def test_each_line_gets_a_decision_and_a_bad_line_an_error(edition, unit, code, version):
    status, out = run("services.router.cli", "--edition", edition)
    assert len(out) == len(LINES) and status == 1  # 1: some lines were in error
    routed, bad, ambiguous, missing, other = out
    assert routed["outcome"] == "routed" and routed["unit"]["id"] == unit
    assert routed["unit"]["admin_code"] == code and routed["area"]["code"] == code
    assert routed["directory_version"] == version and routed["rule"] == "category:essential_supplies->area"
    assert routed["reason"] and routed["channel"] == "web"
    assert bad["line"] == 2 and "error" in bad
    assert ambiguous["outcome"] == "triage" and ambiguous["unit"]["id"] == f"{edition}/1022"
    assert "no district" in ambiguous["reason"]
    assert "address" in missing["error"]
    assert other["outcome"] == "routed" and other["rule"] == "category:other->area"


def test_the_route_subcommand_of_the_router():
    status, out = run("services.router", "route", "--edition", "hcmc-2021")
    assert [line.get("outcome") for line in out] == ["routed", None, "triage", None, "routed"]


def test_an_unknown_edition_is_refused():
    done = subprocess.run([sys.executable, "-m", "services.router.cli", "--edition", "hcmc-2019"],
                          input="", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "hcmc-2019" in done.stderr
