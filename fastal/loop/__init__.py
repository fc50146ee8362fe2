"""The active-learning loop (a human annotating) and its simulation on labeled data.

One file per job:

- :mod:`.loop` -- :class:`ActiveLoop`, batches out and labels in, retraining every round;
- :mod:`.batches` -- a strategy's next batch and the seed set chosen without a model;
- :mod:`.model` -- the user's model (an estimator or a ``(train, predict_proba)`` pair);
- :mod:`.stopping` -- the stopping rules and Cohen's kappa for stabilising predictions;
- :mod:`.simulation` -- :func:`simulate`, paired learning curves on labeled data;
- :mod:`.savings` -- :func:`labels_saved`, the labels each strategy saves against random.

Every public name is importable from ``fastal.loop`` as before the split.
"""

from ._common import (DEFAULT_STRATEGY, MODEL_FREE_STRATEGIES, SEED_STRATEGIES, STRATEGIES,
                      needs_model)
# Private helpers other modules imported from fastal.loop before the split:
from ._common import _check_strategy, _dense_embeddings, _n_rows  # noqa: F401
from ._common import _needs_embeddings, _strategy_name  # noqa: F401
from .batches import _select_batch, initial_positions  # noqa: F401
from .loop import ActiveLoop, Batch, RoundRecord
from .model import _Model  # noqa: F401
from .savings import AulcTable, SavingsTable, aulc, labels_saved
from .simulation import SimulationResult, simulate
from .stopping import STOP_REASONS, cohen_kappa, stopping_points

__all__ = [
    "ActiveLoop", "AulcTable", "Batch", "DEFAULT_STRATEGY", "MODEL_FREE_STRATEGIES", "RoundRecord",
    "SEED_STRATEGIES", "STOP_REASONS", "STRATEGIES", "SavingsTable", "SimulationResult", "aulc",
    "cohen_kappa", "initial_positions", "labels_saved", "needs_model", "simulate",
    "stopping_points",
]
