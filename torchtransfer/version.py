"""The library version (one place; ``torchtransfer.__version__`` re-exports it)."""

__version__ = "0.1.0"
