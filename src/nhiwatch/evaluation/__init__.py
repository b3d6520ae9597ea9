"""Measuring detection quality against the simulator's labels."""
