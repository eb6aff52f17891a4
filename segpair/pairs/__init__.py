"""Co-occurrence sets and leakage-safe train/val/test pairs."""
