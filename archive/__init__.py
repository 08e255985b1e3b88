"""Core of the digital museum: records, configuration, catalog, storage, errors and the CLI.

This package imports none of the others (ingest, iiif, search, web); only
``archive.cli`` reaches them, lazily, to wire a command to its implementation.
"""

__version__ = "0.1.0"
