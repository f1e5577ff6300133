"""Notifier (thông báo): tells handlers of their assignments and citizens of their case, on each
one's own channel, exactly once in effect, with retries, dead letters and a record of every delivery."""
