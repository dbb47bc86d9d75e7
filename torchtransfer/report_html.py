"""A self-contained HTML report of one run: summary table, figures embedded as base64 PNGs, the decision."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
figure{display:inline-block;margin:.5rem;vertical-align:top}figure img{max-width:520px;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}section{margin-bottom:2rem}"""
# One colour per domain in every figure of a run (embeddings, curves, the confusion matrix's colour map).
DOMAIN_COLOURS = {"source": "#1f77b4", "target": "#e6550d"}
DOMAIN_CMAPS = {"source": "Blues", "target": "Oranges"}


def curves_png(history: Mapping[str, Sequence[tuple[int, float]]],
               domains: Mapping[str, str] | None = None) -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    buffer = io.BytesIO()
    curves_figure(history, domains).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def curves_figure(history: Mapping[str, Sequence[tuple[int, float]]], domains: Mapping[str, str] | None = None):
    """Per-epoch curves (e.g. ``train/loss``, ``val/acc``) side by side; ``domains`` maps a curve to the domain
    it is measured on, which gives its colour (``DOMAIN_COLOURS``) and its title."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * max(len(history), 1), 3))
    for i, (name, points) in enumerate(history.items(), start=1):
        ax = fig.add_subplot(1, max(len(history), 1), i)
        steps, values = zip(*points, strict=True) if points else ((), ())
        domain = (domains or {}).get(name)
        ax.plot(steps, values, marker="o", color=DOMAIN_COLOURS.get(domain, "0.3"))
        ax.set_title(f"{name} ({domain})" if domain else name)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def render(title: str, rows: Mapping[str, str], figures: Mapping[str, Mapping[str, bytes]],
           decision: str, links: Mapping[str, str] | None = None) -> str:
    """``figures`` maps a section name to {caption: PNG bytes}; everything ends up inside one HTML file.

    Example:
        >>> "<td>0.9</td>" in render("t", {"acc": "0.9"}, {}, "promoted")
        True
    """
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>", "<section><h2>Summary</h2><table>"]
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows.items()]
    parts.append("</table>")
    for label, url in (links or {}).items():
        parts.append(f"<p><a href='{esc(url)}'>{esc(label)}</a></p>")
    parts.append(f"</section><section><h2>Promotion</h2><p>{esc(decision)}</p></section>")
    for section, images in figures.items():
        if not images:
            continue
        parts.append(f"<section><h2>{esc(section)}</h2>")
        for caption, png in images.items():
            data = base64.b64encode(png).decode()
            parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{esc(caption)}'>"
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
