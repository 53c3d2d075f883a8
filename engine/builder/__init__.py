"""The build phase: configuration, profiles, passes, tactic choice, memory planning."""
