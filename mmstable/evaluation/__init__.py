from .filters import *  # noqa: F401,F403
from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .pareto import (CAUSAL_FAMILIES, DEFAULT_GRIDS, best_on_front,  # noqa
                     compare_to_front, front_value, pareto_front,
                     scenario_summary)
