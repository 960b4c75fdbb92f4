"""dagu-py: a Dagu-compatible workflow engine in one Python zipapp."""

__version__ = "0.1.0"
