"""IIIF: the Image API (3.0 and 2.1) from our pyramids, and Presentation 3.0 manifests.

``routes`` is the only module here that imports Flask.
"""
