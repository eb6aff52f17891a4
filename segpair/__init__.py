"""segpair core: the science of segment pairing, importable without Dagster."""

__version__ = "0.1.0"
