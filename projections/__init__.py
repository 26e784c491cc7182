"""Followers of the log that build the read side."""
