"""Where findings go: JSON lines (the finding contract) and OCSF."""
