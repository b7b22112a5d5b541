"""The state-resolution benchmark suite: our engine beside Synapse's, on the same fixtures."""
