"""What erased personal data reads as, everywhere (events, read models, queries)."""

ERASED = "(erased)"
