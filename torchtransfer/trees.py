"""Nested mappings (parsed YAML, dumped configs): hashing, flattening to dotted keys, deep merging."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def section_hash(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts`` (pydantic models are dumped first)."""
    dumped = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``; mappings merge recursively, anything else replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def merge_choosing(base: dict[str, Any], update: Mapping[str, Any],
                   choices: Mapping[tuple[str, ...], tuple[str, ...]]) -> dict[str, Any]:
    """``deep_merge``, except at each section ``path`` of ``choices`` whose keys are alternatives: a layer
    that sets one of them drops the others inherited from ``base`` (a domain is a ``name``, a ``folder`` or a
    ``manifest``: an experiment file that sets ``folder`` no longer inherits the default's ``name``).

    Example:
        >>> base = {"data": {"target": {"name": "usps", "train": 5}}}
        >>> merge_choosing(base, {"data": {"target": {"folder": "x"}}}, {("data", "target"): ("name", "folder")})
        {'data': {'target': {'train': 5, 'folder': 'x'}}}
    """
    for path, keys in choices.items():
        new, old = update, base
        for part in path:
            new = new.get(part) if isinstance(new, Mapping) else None
            old = old.get(part) if isinstance(old, Mapping) else None
        if isinstance(new, Mapping) and isinstance(old, Mapping) and any(k in new for k in keys):
            kept = {k: v for k, v in old.items() if k not in keys}
            base = deep_merge(base, {})  # a copy to edit
            section = base
            for part in path[:-1]:
                section[part] = dict(section[part])
                section = section[part]
            section[path[-1]] = kept
    return deep_merge(base, update)
