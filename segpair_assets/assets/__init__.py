"""segpair assets, one module per pipeline stage."""
