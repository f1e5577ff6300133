"""``python -m services.router serve`` runs the router; ``... route --edition E`` is what-if routing."""

import sys


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        from services.router.main import serve

        serve()
    elif command == "route":
        from services.router.cli import main as route

        sys.exit(route(sys.argv[2:]))
    else:
        sys.exit("usage: python -m services.router [serve | route --edition hcmc-2021|hcmc-2025]")


main()
