"""``python -m services.oversight`` serves oversight; ``python -m services.oversight rebuild [--swap]``
rebuilds its read models from the full history on Kafka and compares them with the live ones;
``refold [--force]`` folds every stored case again (what a start does when the fold changed)."""

import sys


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        from services.oversight.main import serve

        serve()
    elif command == "rebuild":
        from services.oversight.rebuild import main as rebuild

        sys.exit(rebuild(sys.argv[2:]))
    elif command == "refold":
        from services.oversight.refold import main as refold

        sys.exit(refold(sys.argv[2:]))
    else:
        sys.exit("usage: python -m services.oversight [serve | rebuild [--swap] [--keep] | refold [--force]]")


main()
