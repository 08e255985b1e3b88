"""Ingest: read a curator's collection folder, check everything, tile images, update catalog and index."""
