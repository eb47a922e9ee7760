"""Ray as a backend of the chunk map (``pip install 'truelabel[distributed]'``).

:class:`RayBackend` runs the same pure per-chunk functions as :class:`~truelabel.backend.LocalBackend`,
as Ray tasks; ``get_backend("ray", address=...)`` and the CLI's ``--backend ray`` resolve to it.
This package is the only one that imports Ray, and only when a backend first runs.
"""

from ._ray import RayBackend, Shared, ray_backend
from ._settings import LOCAL_ENV, RaySettings, check_address, ray_settings

__all__ = [
    "LOCAL_ENV",
    "RayBackend",
    "RaySettings",
    "Shared",
    "check_address",
    "ray_backend",
    "ray_settings",
]
