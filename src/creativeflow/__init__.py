"""CreativeFlow: a self-hostable backend platform for AI-assisted creative work."""

__version__ = "0.1.0"
