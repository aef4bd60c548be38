from .filters import *  # noqa: F401,F403
from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .pareto import (CAUSAL_FAMILIES, DEFAULT_GRIDS,  # noqa: F401
                     add_pareto_sweep, best_on_front, compare_to_front,
                     format_report, front_value, pareto_front,
                     scenario_summary)
from .tracked_records import tracked_video_records  # noqa: F401
from .ground_truth_track import (load_ground_truth_track,  # noqa: F401
                                 score_against_ground_truth)
