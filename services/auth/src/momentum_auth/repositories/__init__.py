"""The queries of auth, one repository class per sub-domain, each holding its session.

Signing keys have theirs with the rest of their rules, in ``momentum_auth.signing_keys``.
"""
