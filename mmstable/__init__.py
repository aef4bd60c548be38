"""mmstable: stable video face alignment as an MMPose plugin.

``import mmstable`` (or ``custom_imports=dict(imports=['mmstable'])`` in a config)
registers every mmstable module into MMPose's registries and installs the safe
checkpoint loader (:mod:`mmstable.utils.checkpoint`).
"""
from .version import __version__
from . import utils  # noqa: F401  (first: installs the safe checkpoint loader)
from . import (apis, codecs, datasets, engine, evaluation, models,  # noqa
               structures, visualization)

__all__ = ['__version__']
