"""Who a caller is: passwords, signed access and refresh tokens and their signing keys, API keys,
OpenID Connect sign-in, and the master key that seals the secrets they rest on."""
