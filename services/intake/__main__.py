"""``python -m services.intake`` runs the intake HTTP service."""

from services.intake.main import serve

serve()
