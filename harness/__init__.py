"""incident-harness: closed incidents become regression cases; runs are compared and gated."""

__version__ = "0.1.0"
