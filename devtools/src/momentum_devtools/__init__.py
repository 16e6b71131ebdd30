"""Momentum's development tooling: the one-command dev stack, the embedded NATS server and the
pytest plugin. It is never installed in an image; the runtime library is ``momentum_shared``."""
