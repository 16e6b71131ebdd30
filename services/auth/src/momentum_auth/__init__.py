"""momentum_auth."""
