"""The colour-by catalogue of the page: each field's colour codes, palette, text and key.

Every field (the true class, then ``EmbeddingResult.fields``: prediction, correct, confidence,
cluster, metadata) becomes small integer codes per sample and a palette: categories get one code
each (classes and predictions keep the class colours of the static figures), numbers are
quantised to 256 steps of Viridis, and the last palette entry is the grey of "no value". The page
colours points through one bokeh ``LinearColorMapper`` on a per-map code column; changing the
colour-by swaps the code columns and the palette (a few lines of JavaScript, no recomputation).
Maps may differ in a field (clusters are per capture point): identical columns are stored once.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.render.colors import class_color
from featscope.results import EmbeddingResult

__all__ = ["MISSING", "PageField", "page_fields"]

#: Colour of a sample without a value (no prediction, cluster noise, NaN, a map lacking the field).
MISSING = "#999999"
_RESERVED_ORDER = ("prediction", "correct", "confidence", "cluster")
# as in the static figures (render/colorby.py): red wrong, green right
_WRONG, _RIGHT = "#d62728", "#2ba12b"
_KEY_ENTRIES = 30


def _hex(rgba: Sequence[float]) -> str:
    r, g, b = (round(v * 255) for v in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def class_hex(index: int) -> str:
    """Return the page's colour of class ``index`` (that of the static figures)."""
    return _hex(class_color(index))


@dataclass(frozen=True)
class PageField:
    """One entry of the colour-by selector.

    Attributes
    ----------
    name : str
        ``"label"``, a reserved field name or a metadata column name.
    kind : str
        ``"categorical"`` or ``"continuous"``.
    palette : tuple of str
        Hex colours by code; the last one is the grey of "no value".
    code_columns : tuple of str or None
        Per map, the source column holding its codes (None: the map lacks the field).
    text_columns : tuple of str or None
        Per map, the source column holding its values as text (hover, search).
    key_html : str
        The colour key shown beside the maps (escaped HTML).
    """

    name: str
    kind: str
    palette: tuple[str, ...]
    code_columns: tuple[str | None, ...]
    text_columns: tuple[str | None, ...]
    key_html: str


def _order(maps: Sequence[EmbeddingResult]) -> list[str]:
    names: list[str] = []
    for m in maps:
        for name in m.fields:
            if name not in names:
                names.append(name)
    reserved = [n for n in _RESERVED_ORDER if n in names]
    return reserved + [n for n in names if n not in _RESERVED_ORDER]


def _categorical(name: str, values: np.ndarray, class_names: Sequence[str], top: int) -> tuple:
    """Return ``(codes, texts, categories, palette)`` of one column of categories.

    ``top`` is the largest prediction or cluster index over every map, so that the code of
    "none"/"noise" is the same grey entry in every map.
    """
    values = np.asarray(values)
    if name == "correct" or values.dtype == bool:
        flags = values.astype(bool)
        categories = ["wrong", "right"] if name == "correct" else ["False", "True"]
        palette = [_WRONG, _RIGHT] if name == "correct" else [class_hex(0), class_hex(1)]
        return flags.astype(np.int16), [categories[int(v)] for v in flags], categories, palette
    if name in ("prediction", "cluster"):
        ints = values.astype(np.int64)
        size = max(top + 1, len(class_names) if name == "prediction" else 0)
        if name == "prediction":
            categories = [class_names[i] if i < len(class_names) else str(i) for i in range(size)]
            none = "none"
        else:
            categories = [f"cluster {i}" for i in range(size)]
            none = "noise"
        palette = [class_hex(i) for i in range(size)]
        codes = np.where(ints >= 0, ints, size).astype(np.int32)
        texts = [categories[c] if c < size else none for c in codes.tolist()]
        return codes, texts, categories, palette
    as_text = values.astype(str)
    categories = sorted(set(as_text.tolist()))
    index = {c: i for i, c in enumerate(categories)}
    codes = np.asarray([index[t] for t in as_text.tolist()], dtype=np.int32)
    return codes, as_text.tolist(), categories, [class_hex(i) for i in range(len(categories))]


def _continuous(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, list[str]]:
    x = np.asarray(values, dtype=np.float64)
    span = high - low if high > low else 1.0
    finite = np.isfinite(x)
    codes = np.full(len(x), 256, dtype=np.int32)
    codes[finite] = np.clip(np.round((x[finite] - low) / span * 255), 0, 255).astype(np.int32)
    texts = [f"{v:.4g}" if f else "n/a" for v, f in zip(x.tolist(), finite.tolist(), strict=True)]
    return codes, texts


def _compact(codes: np.ndarray, n_colours: int) -> np.ndarray:
    """Return the codes in the smallest integer type that holds them.

    The page stores one code per sample and map: int8 instead of int32 keeps a
    1,000,000-point page 3 bytes per point and map lighter.
    """
    dtype = np.int8 if n_colours <= 127 else np.int16 if n_colours <= 32767 else np.int32
    return np.asarray(codes).astype(dtype)


def _key_categorical(name: str, categories: Sequence[str], palette: Sequence[str], missing: str):
    shown = [
        f'<span class="fs-sw" style="background:{c}"></span>{html.escape(str(t))}'
        for t, c in zip(categories[:_KEY_ENTRIES], palette, strict=False)
    ]
    if len(categories) > _KEY_ENTRIES:
        shown.append(f"… {len(categories) - _KEY_ENTRIES} more")
    shown.append(f'<span class="fs-sw" style="background:{MISSING}"></span>{missing}')
    items = "".join(f"<div>{s}</div>" for s in shown)
    return f'<div class="fs-key"><b>colour: {html.escape(name)}</b>{items}</div>'


def _key_continuous(name: str, palette: Sequence[str], low: float, high: float) -> str:
    stops = ", ".join([*palette[::32], palette[255]])
    return (
        f'<div class="fs-key"><b>colour: {html.escape(name)}</b>'
        f'<div class="fs-ramp" style="background: linear-gradient(to right, {stops})"></div>'
        f'<div class="fs-ramp-ends"><span>{low:.4g}</span><span>{high:.4g}</span></div>'
        f'<div><span class="fs-sw" style="background:{MISSING}"></span>no value</div></div>'
    )


def page_fields(
    maps: Sequence[EmbeddingResult], label_codes: np.ndarray
) -> tuple[list[PageField], dict[str, Any]]:
    """Return the colour-by fields of a page and the per-sample columns they need.

    Parameters
    ----------
    maps : sequence of EmbeddingResult
        The maps of the page (same samples, same order).
    label_codes : numpy.ndarray
        ``(N,)`` colour code of each sample's class (its index; 0 for unlabelled samples).

    Returns
    -------
    fields : list of PageField
        ``label`` first, then the reserved fields present, then the metadata columns.
    columns : dict
        Source column name -> ``(N,)`` array (codes) or list (texts), for every sample.
    """
    from bokeh.palettes import Viridis256

    first = maps[0]
    n_codes = int(label_codes.max()) + 1 if len(label_codes) else 1
    label_palette = (*tuple(class_hex(i) for i in range(n_codes)), MISSING)
    fields = [
        PageField(
            name="label",
            kind="categorical",
            palette=label_palette,
            code_columns=("label_code",) * len(maps),
            text_columns=("class_name",) * len(maps),
            key_html="",
        )
    ]
    columns: dict[str, Any] = {"label_code": _compact(label_codes, len(label_palette))}
    seen: dict[tuple[str, bytes], tuple[str, str]] = {}
    for j, name in enumerate(_order(maps)):
        present = [np.asarray(m.fields[name]) if name in m.fields else None for m in maps]
        arrays = [a for a in present if a is not None]
        continuous = all(np.issubdtype(a.dtype, np.floating) for a in arrays)
        ints = [a for a in arrays if np.issubdtype(a.dtype, np.integer) and a.size]
        top = max((int(a.max()) for a in ints), default=-1)
        if continuous:
            finite = np.concatenate([a[np.isfinite(a)] for a in arrays]).astype(np.float64)
            low, high = (0.0, 1.0) if name == "confidence" else (
                (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            )  # fmt: skip
            palette = (*tuple(Viridis256), MISSING)
            key = _key_continuous(name, Viridis256, low, high)
        code_cols: list[str | None] = []
        text_cols: list[str | None] = []
        categories: list[str] = []
        for k, values in enumerate(present):
            if values is None:
                code_cols.append(None)
                text_cols.append(None)
                continue
            if continuous:
                codes, texts = _continuous(values, low, high)
            else:
                codes, texts, cats, pal = _categorical(name, values, first.class_names, top)
                if len(cats) > len(categories):
                    categories, cat_palette = cats, pal
            sig = (name, np.ascontiguousarray(values).tobytes())
            if sig not in seen:
                seen[sig] = (f"c{j}_{k}", f"t{j}_{k}")
                columns[f"c{j}_{k}"] = codes
                columns[f"t{j}_{k}"] = texts
            code_cols.append(seen[sig][0])
            text_cols.append(seen[sig][1])
        if not continuous:
            if name not in ("prediction", "cluster", "correct"):
                # metadata categories: one code list for every map (their union, sorted)
                categories = sorted({t for a in arrays for t in np.asarray(a).astype(str).tolist()})
                index = {c: i for i, c in enumerate(categories)}
                for col in set(code_cols) - {None}:
                    texts = columns[col.replace("c", "t", 1)]
                    columns[col] = np.asarray([index[t] for t in texts], dtype=np.int32)
                cat_palette = [class_hex(i) for i in range(len(categories))]
            size = len(categories)
            palette = (*tuple(cat_palette[:size]), MISSING)
            missing = {"prediction": "none", "cluster": "noise"}.get(name, "no value")
            key = _key_categorical(name, categories, palette, missing)
        for col in set(code_cols) - {None}:
            columns[col] = _compact(columns[col], len(palette))
        fields.append(
            PageField(
                name=name,
                kind="continuous" if continuous else "categorical",
                palette=palette,
                code_columns=tuple(code_cols),
                text_columns=tuple(text_cols),
                key_html=key,
            )
        )
    return fields, columns
