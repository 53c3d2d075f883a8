"""Layer families: each module defines its layer classes and a mixin of ``add_*`` methods."""
