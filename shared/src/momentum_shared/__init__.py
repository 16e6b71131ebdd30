"""momentum_shared."""
