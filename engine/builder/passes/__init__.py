"""Graph passes: one per module, each ``def name(network) -> bool`` (True when it changed the
network). ``engine/builder/pipeline.py`` is the only place their order is written."""
