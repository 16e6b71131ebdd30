"""momentum_tasks."""
