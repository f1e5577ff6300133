"""``python -m services.oversight`` runs the oversight service."""

from services.oversight.main import serve

serve()
