"""The write side: commands, their handlers, authorization and the responder."""
