"""Ingest: read curators' collection folders, check everything, tile images with pyvips,
update the catalog and the search index. Entry point: ``ingest.pipeline.run_ingest``."""
