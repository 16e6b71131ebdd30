"""momentum_gateway."""
