"""The write side: commands, their handlers and the runner that retries them, authorization,
sign-in, and the responder."""
