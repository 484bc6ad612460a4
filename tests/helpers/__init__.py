"""Builders shared by the test modules: tiny models saved as real checkpoints are, real images written in the
layouts overspec reads, and the command-line runner. Test modules import from here, never from each other."""
