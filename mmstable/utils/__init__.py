from .checkpoint import (CheckpointError, CheckpointMismatchError,
                         CorruptCheckpointError, MissingCheckpointError,
                         UnsafeCheckpointError, add_safe_globals,
                         allow_partial_load, get_safe_globals,
                         install_checkpoint_fit_check,
                         install_safe_checkpoint_loader, safe_load)

install_safe_checkpoint_loader()

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'CorruptCheckpointError',
    'MissingCheckpointError', 'UnsafeCheckpointError', 'add_safe_globals',
    'allow_partial_load', 'get_safe_globals', 'install_checkpoint_fit_check',
    'install_safe_checkpoint_loader', 'safe_load'
]
