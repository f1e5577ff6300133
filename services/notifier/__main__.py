"""``python -m services.notifier`` runs the notifier service."""

from services.notifier.main import serve

serve()
