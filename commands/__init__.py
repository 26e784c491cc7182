"""The write side: commands, their handlers and the message bus that runs them, admission,
sign-in, the responder and retention."""
