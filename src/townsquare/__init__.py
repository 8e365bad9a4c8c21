"""townsquare: a self-hostable generative-AI engine for a social network's public posts."""

__version__ = "0.1.0"
