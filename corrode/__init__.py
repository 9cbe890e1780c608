"""corrode: show what a car will look like when it corrodes."""

__version__ = "0.1.0"
