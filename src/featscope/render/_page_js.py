"""The few lines of JavaScript the interactive page runs (bokeh ``CustomJS`` bodies).

Kept apart from the layout code so the Python stays readable. Every callback receives the
per-class ``ColumnDataSource`` objects as ``sources``; a sample's selection lives on its source,
so setting ``selected.indices`` there highlights it in every map at once.
"""

from __future__ import annotations

__all__ = ["CLEAR_JS", "COUNT_JS", "DOWNLOAD_JS", "SEARCH_JS", "VISIBLE_JS"]

#: Selected samples -> csv file download (``id,label,class_name,x_<map>,y_<map>...``).
DOWNLOAD_JS = """
function cell(v) {
  const s = String(v);
  return /[",\\n\\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
const lines = [header.map(cell).join(',')];
const order = [];
for (const src of sources) {
  const d = src.data;
  for (const i of src.selected.indices) {
    order.push([d.row[i], src, i]);
  }
}
order.sort((a, b) => a[0] - b[0]);
for (const [, src, i] of order) {
  const d = src.data;
  const values = [d.id[i], d.label[i], d.class_name[i]];
  for (const c of coord_columns) { values.push(d[c][i]); }
  lines.push(values.map(cell).join(','));
}
const blob = new Blob([lines.join('\\n') + '\\n'], {type: 'text/csv;charset=utf-8'});
const url = URL.createObjectURL(blob);
const a = document.createElement('a');
a.href = url;
a.download = filename;
document.body.appendChild(a);
a.click();
document.body.removeChild(a);
setTimeout(() => URL.revokeObjectURL(url), 1000);
"""

#: Search box -> select the samples whose class name or id contains the text (any case).
SEARCH_JS = """
const q = (cb_obj.value_input !== undefined ? cb_obj.value_input : cb_obj.value)
  .trim().toLowerCase();
for (const src of sources) {
  const d = src.data;
  const hits = [];
  if (q.length > 0) {
    const n = d.id.length;
    for (let i = 0; i < n; i++) {
      if (String(d.class_name[i]).toLowerCase().includes(q) ||
          String(d.id[i]).toLowerCase().includes(q)) {
        hits.push(i);
      }
    }
  }
  src.selected.indices = hits;
}
"""

#: Clear button -> empty selection everywhere (and an empty search box).
CLEAR_JS = """
for (const src of sources) { src.selected.indices = []; }
search.value = '';
"""

#: Any selection change -> "N of M samples selected" in the status line, and fade the classes
#: with nothing selected (bokeh fades unselected points only within a source that has a selection).
COUNT_JS = """
let n = 0;
for (const src of sources) { n += src.selected.indices.length; }
status.text = n === 0 ? 'no selection' : n + ' of ' + total + ' samples selected';
sources.forEach((src, k) => {
  const alpha = (n > 0 && src.selected.indices.length === 0) ? faded : normal;
  for (const r of renderers[k]) {
    if (r.glyph.fill_alpha !== alpha) { r.glyph.fill_alpha = alpha; }
  }
});
"""

#: A class hidden in one map (legend click) is hidden in every map.
VISIBLE_JS = """
for (const r of others) {
  if (r.visible !== cb_obj.visible) { r.visible = cb_obj.visible; }
}
"""
