"""lmsd: a self-hosted learning platform that a university installs and runs itself."""

__version__ = "0.1.0"
