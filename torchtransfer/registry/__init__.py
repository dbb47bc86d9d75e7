"""Registry stage: the servable model (``serving``), the pure promotion gate (``promotion``) and MLflow
registry I/O (``store``: versions, aliases, the promotion history, ``from_registry``)."""

from torchtransfer.registry import promotion, serving
from torchtransfer.registry.store import (
    CHALLENGER,
    CHAMPION,
    append_history,
    by_alias,
    find_version,
    from_registry,
    load_servable,
    log_servable,
    mark_complete,
    move_alias,
    predict_uri,
    read_history,
    register,
    remove_abandoned,
    score_version,
)

__all__ = ["CHALLENGER", "CHAMPION", "append_history", "by_alias", "find_version", "from_registry",
           "load_servable", "log_servable", "mark_complete", "move_alias", "predict_uri", "promotion",
           "read_history", "register", "remove_abandoned", "score_version", "serving"]
