"""``python -m services.notifier`` runs the notifier service.

``python -m services.notifier unit-key <unit id>`` prints the key that unit's webhooks are signed
with (from ``NOTIFIER_WEBHOOK_SIGNING_KEY``), to give to that unit's district service alone.
"""

import sys

if sys.argv[1:2] == ["unit-key"]:
    from services.notifier.providers import unit_key
    from services.notifier.settings import NotifierSettings

    if len(sys.argv) != 3:
        sys.exit("usage: python -m services.notifier unit-key <unit id>")
    signing_key = NotifierSettings().webhook_signing_key.get_secret_value()
    if not signing_key:
        sys.exit("NOTIFIER_WEBHOOK_SIGNING_KEY is not set: the notifier signs nothing")
    print(unit_key(signing_key.encode(), sys.argv[2]).decode())
else:
    from services.notifier.main import serve

    serve()
