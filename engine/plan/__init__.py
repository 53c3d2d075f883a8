"""The serialized plan: write, read, verify."""
