"""longtail: an active learning data engine."""
__version__ = "0.1.0"
