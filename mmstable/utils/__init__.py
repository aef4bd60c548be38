from .checkpoint import (CheckpointError, CheckpointMismatchError,
                         CorruptCheckpointError, MissingCheckpointError,
                         UnsafeCheckpointError, add_safe_globals,
                         allow_partial_load, get_safe_globals,
                         install_checkpoint_fit_check,
                         install_safe_checkpoint_loader, safe_load)
from .literal_options import parse_dict_option

install_safe_checkpoint_loader()

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'CorruptCheckpointError',
    'MissingCheckpointError', 'UnsafeCheckpointError', 'add_safe_globals',
    'allow_partial_load', 'get_safe_globals', 'install_checkpoint_fit_check',
    'install_safe_checkpoint_loader', 'parse_dict_option', 'safe_load'
]
