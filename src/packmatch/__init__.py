"""packmatch: match document packages against reference data and give each one verdict."""

__version__ = "0.1.0"
