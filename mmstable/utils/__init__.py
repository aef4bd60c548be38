from .checkpoint import (UnsafeCheckpointError, add_safe_globals,
                         get_safe_globals, install_safe_checkpoint_loader,
                         safe_load)

install_safe_checkpoint_loader()

__all__ = [
    'UnsafeCheckpointError', 'add_safe_globals', 'get_safe_globals',
    'install_safe_checkpoint_loader', 'safe_load'
]
