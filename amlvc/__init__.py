"""amlvc: git-backed version control for Azure ML Studio (classic) experiments."""

__version__ = "0.1.0"
