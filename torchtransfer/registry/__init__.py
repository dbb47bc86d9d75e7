"""Registry stage: the servable model (``serving``), the pure promotion gate (``promotion``) and MLflow
registry I/O (``store``: the logged model, versions, ``from_registry``; ``history``: aliases and the
promotion history)."""

from torchtransfer.registry import history, promotion, serving, store
from torchtransfer.registry.history import HISTORY_PREFIX, append_history, by_alias, move_alias, read_history
from torchtransfer.registry.store import (
    CHALLENGER,
    CHAMPION,
    COMPLETE_TAG,
    find_version,
    from_registry,
    input_shape,
    load_servable,
    log_servable,
    mark_complete,
    predict_uri,
    register,
    remove_abandoned,
    score_version,
    tracking,
)

__all__ = ["CHALLENGER", "CHAMPION", "COMPLETE_TAG", "HISTORY_PREFIX", "append_history", "by_alias",
           "find_version", "from_registry", "history", "input_shape", "load_servable", "log_servable", "mark_complete",
           "move_alias", "predict_uri", "promotion", "read_history", "register", "remove_abandoned",
           "score_version", "serving", "store", "tracking"]
