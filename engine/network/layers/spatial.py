"""SpatialLayers: layer family mixed into INetworkDefinition (being filled in)."""

__all__: list[str] = []


class SpatialLayers:
    """The `add_*` methods of this family."""
