"""The shared kernel: exceptions, logging, DTOs, events, security helpers and validators.

Every module builds on these; this package imports no domain module.
"""

__version__ = "0.1.0"
