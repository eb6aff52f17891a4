"""segpair's Dagster code location: assets, partitions, checks and jobs."""
