"""Who a caller is: passwords, signed access and refresh tokens and their signing keys, API keys,
OpenID Connect sign-in, the master key that seals the secrets they rest on, and the caller as the
event store has them now (`acting.py`)."""
