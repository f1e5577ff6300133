"""Intake's channel adapters, one module each: they authenticate the sender, read its message into
a :class:`~services.intake.domain.Submission`, and hand it to :class:`~services.intake.application.Intake`."""
