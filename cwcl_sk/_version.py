"""The library's version, in one place: the package and its build metadata read it here."""

__version__ = "0.1.0.dev0"
