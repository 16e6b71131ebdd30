"""Test infrastructure shared by every member: PostgreSQL, NATS, databases, tokens, apps."""
