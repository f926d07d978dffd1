"""Foundation: errors, settings, pinned versions, YAML, progress, commands, waits, run identity."""
