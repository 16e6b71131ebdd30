"""momentum_analytics."""
