"""MkDocs hooks (mkdocs.yml `hooks:`): pages made from the code at build time, so they cannot drift from it.

- ``index.md`` is the repository's README.md, its ``docs/`` links made relative to the site.
- ``configuration.md``: ``<!-- config-reference -->`` becomes one table per config section, read from the
  pydantic schema of :class:`torchtransfer.config.ExperimentConfig` (keys, types, constraints and the fields'
  docstrings) and the packaged default experiment's values. A field without a docstring fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- config-reference -->"
VALUES = {"FloatRange", "IntRange"}  # sub-models shown as one value ({low, high, log}), not as a section


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (the MkDocs hook signature)
    if page.file.src_uri == "index.md":
        readme = (ROOT / "README.md").read_text()
        return re.sub(r"\]\(docs/", "](", readme)
    if MARKER in markdown:
        return markdown.replace(MARKER, config_reference())
    return markdown


def config_reference() -> str:
    """Markdown: a table per section of the experiment schema (dotted keys, type, default, meaning)."""
    import yaml

    from torchtransfer.config import ExperimentConfig

    schema = ExperimentConfig.model_json_schema()
    packaged = yaml.safe_load((ROOT / "torchtransfer/conf/default.yaml").read_text())
    sections: dict[str, list[str]] = {}
    undocumented: list[str] = []
    _walk(schema, schema["$defs"], "", packaged, sections, undocumented)
    if undocumented:
        raise ValueError(f"config keys without a docstring (torchtransfer/config): {', '.join(undocumented)}")
    out = []
    for section, rows in sections.items():
        out += [f"### `{section}`" if section else "### top level", "", "| key | type | default | meaning |",
                "| --- | --- | --- | --- |", *rows, ""]
    return "\n".join(out)


def _ref(prop: dict) -> str | None:
    refs = [p["$ref"] for p in [prop, *prop.get("anyOf", [])] if "$ref" in p]
    return refs[0].rsplit("/", 1)[1] if refs else None


def _walk(node: dict, defs: dict, prefix: str, packaged: dict, sections: dict, undocumented: list) -> None:
    """Rows of ``node``'s keys into ``sections[prefix]``; the default shown is the packaged experiment's value
    (what a run without -c uses), else the schema's."""
    rows = sections.setdefault(prefix.rstrip("."), [])
    nested = []
    for key, prop in node.get("properties", {}).items():
        dotted = prefix + key
        ref = _ref(prop)
        if ref and ref not in VALUES:
            nested.append((dotted, defs[ref], packaged.get(key) or {}))
            continue
        if not prop.get("description"):
            undocumented.append(dotted)
        if key in packaged:
            default = f"`{json.dumps(packaged[key], ensure_ascii=False)}`"
        else:
            default = "required" if key in node.get("required", []) else f"`{json.dumps(prop.get('default'))}`"
        meaning = " ".join(prop.get("description", "").split()).replace("|", "\\|")
        rows.append(f"| `{dotted}` | {_type(prop, defs)} | {default} | {meaning} |")
    for dotted, sub, values in nested:
        _walk(sub, defs, dotted + ".", values, sections, undocumented)
    if not rows:
        del sections[prefix.rstrip(".")]


def _type(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        prop = defs[prop["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in prop:
        return " or ".join(dict.fromkeys(_type(p, defs) for p in prop["anyOf"]))
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items") or prop.get("prefixItems")
        inner = ", ".join(_type(i, defs) for i in items) if isinstance(items, list) else _type(items or {}, defs)
        kind = f"list of {inner}" if not isinstance(items, list) else f"[{inner}]"
    if "properties" in prop:
        kind = "{" + ", ".join(prop["properties"]) + "}"
    bounds = [f"{sign} {prop[k]}" for k, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                                                  ("exclusiveMaximum", "<")) if k in prop]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")
