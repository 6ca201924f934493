"""The JavaScript the interactive page runs (bokeh ``CustomJS`` bodies).

Kept apart from the layout code so the Python stays readable. Every callback receives the
per-class ``ColumnDataSource`` objects as ``sources``; a sample's selection lives on its source,
so setting ``selected.indices`` there highlights it in every map at once. Text that comes from
the data (ids, class names, field values) reaches HTML only through ``esc``.
"""

from __future__ import annotations

__all__ = [
    "CLEAR_JS",
    "COLOR_JS",
    "COUNT_JS",
    "DOWNLOAD_JS",
    "LABELS_JS",
    "SEARCH_JS",
    "TAP_JS",
    "VISIBLE_JS",
]

#: Shared helpers: HTML escaping, a thumbnail tag, and each sample row -> [source, index].
_HELPERS = """
function esc(v) {
  return String(v).replace(/[&<>"']/g,
    (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
}
function thumb(uri, title, cls) {
  const t = esc(title);
  if (uri && String(uri).startsWith('data:image/')) {
    return '<img class="' + cls + '" src="' + esc(uri) + '" title="' + t + '" alt="' + t + '">';
  }
  return '<span class="' + cls + ' fs-noimg" title="' + t + '">' + t + '</span>';
}
"""

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
  for (const c of text_columns) { values.push(c === null ? '' : d[c][i]); }
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

#: Search box, mode or scope changed -> select the samples whose value matches, in every map.
#: Exact: the whole value equals the text (any case); regex: the expression matches (any case).
SEARCH_JS = """
if (prop === 'value' && search.value_input !== search.value) {
  search.value_input = search.value;  // a value set by a script: search it (callback below)
  return;
}
const q = String(search.value_input === null || search.value_input === undefined
  ? search.value : search.value_input).trim();
const scope = Number(scope_select.value);
const columns = scope === 0 ? ['class_name', 'id'] : scope === 1 ? ['class_name'] :
  scope === 2 ? ['id'] : [field_columns[scope - 3]];
let test = null;
if (q.length > 0) {
  if (mode.active === 1) {
    try {
      const re = new RegExp(q, 'i');
      test = (s) => re.test(s);
    } catch (e) {
      note.text = 'not a regular expression: ' + e.message;
      for (const src of sources) { src.selected.indices = []; }
      return;
    }
  } else {
    const lower = q.toLowerCase();
    test = (s) => s.toLowerCase() === lower;
  }
}
let hits_total = 0;
for (const src of sources) {
  const d = src.data;
  const hits = [];
  if (test !== null) {
    const n = d.id.length;
    for (let i = 0; i < n; i++) {
      for (const c of columns) {
        if (c !== null && test(String(d[c][i]))) { hits.push(i); break; }
      }
    }
  }
  hits_total += hits.length;
  src.selected.indices = hits;
}
note.text = test === null ? '' : (hits_total === 0 ? 'no sample matches' :
  hits_total + ' match' + (hits_total === 1 ? '' : 'es'));
"""

#: Clear button -> empty selection everywhere (and an empty search box).
CLEAR_JS = """
search.value_input = '';
search.value = '';
for (const src of sources) { src.selected.indices = []; }
note.text = '';
"""

#: Any selection change -> "N of M samples selected", fade the classes with nothing selected
#: (bokeh fades unselected points only within a source that has a selection), and the gallery
#: of the selected samples' thumbnails.
COUNT_JS = (
    _HELPERS
    + """
let n = 0;
for (const src of sources) { n += src.selected.indices.length; }
status.text = n === 0 ? 'no selection' : n + ' of ' + total + ' samples selected';
sources.forEach((src, k) => {
  const alpha = (n > 0 && src.selected.indices.length === 0) ? faded : normal;
  for (const r of renderers[k]) {
    if (r.glyph.fill_alpha !== alpha) { r.glyph.fill_alpha = alpha; }
  }
});
const picked = [];
for (const src of sources) {
  for (const i of src.selected.indices) { picked.push([src.data.row[i], src.data, i]); }
}
picked.sort((a, b) => a[0] - b[0]);
const shown = picked.slice(0, gallery_max);
let body = '';
for (const [, d, i] of shown) {
  body += thumb(d.thumb[i], d.class_name[i] + ' · ' + d.id[i], 'fs-thumb');
}
gallery.text = n === 0 ? '<div class="fs-muted">Select samples (lasso, box or search) to see '
  + 'their images here.</div>' : '<div class="fs-muted">' + (n > shown.length ?
  'first ' + shown.length + ' of ' + n + ' selected' : n + ' selected') + '</div>'
  + '<div class="fs-gallery">' + body + '</div>';
"""
)

#: Colour-by selector -> swap every map's code column and the shared colour mapper's palette.
COLOR_JS = """
const f = Number(cb_obj.value);
const palette = palettes[f];
mapper.palette = palette;
mapper.low = -0.5;
mapper.high = palette.length - 0.5;
for (const src of sources) {
  const update = {};
  for (let k = 0; k < n_maps; k++) {
    const col = code_columns[f][k];
    update['code' + k] = col === null
      ? new Int32Array(src.data.row.length).fill(palette.length - 1) : src.data[col];
  }
  src.data = Object.assign({}, src.data, update);
}
keys.forEach((key, i) => { key.visible = i === f; });
"""

#: A click on a map -> the nearest point, its k feature-space neighbours as thumbnails in the
#: inspector, and rings around them in every map.
TAP_JS = (
    _HELPERS
    + """
const ev = cb_obj;
const xr = fig.x_range, yr = fig.y_range;
const px = fig.inner_width / (xr.end - xr.start);
const py = fig.inner_height / (yr.end - yr.start);
let best = null;
let best_d = radius * radius;
sources.forEach((src, s) => {
  if (!renderers[s].visible) { return; }
  const X = src.data[xcol], Y = src.data[ycol];
  for (let i = 0; i < X.length; i++) {
    const dx = (X[i] - ev.x) * px, dy = (Y[i] - ev.y) * py;
    const d = dx * dx + dy * dy;
    if (d < best_d) { best_d = d; best = [s, i]; }
  }
});
const empty = {};
for (const c of Object.keys(highlight.data)) { empty[c] = []; }
if (best === null) {
  highlight.data = empty;
  inspector.text = hint;
  return;
}
const where = new Map();
sources.forEach((src, s) => {
  const rows = src.data.row;
  for (let i = 0; i < rows.length; i++) { where.set(rows[i], [s, i]); }
});
const row = sources[best[0]].data.row[best[1]];
const flat = neighbors.data['n' + k];
const kk = kn[k];
const nb = [];
for (let j = 0; j < kk; j++) {
  const r = flat[row * kk + j];
  if (r >= 0 && where.has(r)) { nb.push(r); }
}
const rows = [row].concat(nb);
const data = {size: [], line: []};
for (const c of coord_columns) { data[c] = []; }
rows.forEach((r, j) => {
  const [s, i] = where.get(r);
  const d = sources[s].data;
  for (const c of coord_columns) { data[c].push(d[c][i]); }
  data.size.push(j === 0 ? ring + 8 : ring);
  data.line.push(j === 0 ? '#000000' : '#e6007e');
});
highlight.data = data;
const q = sources[best[0]].data;
const qi = best[1];
let same = 0;
let cells = '';
for (const r of nb) {
  const [s, i] = where.get(r);
  const d = sources[s].data;
  const ok = d.label[i] === q.label[qi];
  if (ok) { same += 1; }
  cells += '<div class="fs-nb' + (ok ? '' : ' fs-other') + '">'
    + thumb(d.thumb[i], d.class_name[i] + ' · ' + d.id[i], 'fs-thumb')
    + '<div>' + esc(d.class_name[i]) + '</div></div>';
}
inspector.text = '<div class="fs-inspect"><div class="fs-query">'
  + thumb(q.thumb[qi], q.class_name[qi] + ' · ' + q.id[qi], 'fs-big')
  + '<div><b>' + esc(q.class_name[qi]) + '</b><br><span class="fs-id">' + esc(q.id[qi])
  + '</span>' + field_names.map((name, j) => field_columns[k][j] === null ? '' : '<br>'
  + esc(name) + ': ' + esc(q[field_columns[k][j]][qi])).join('') + '</div></div>'
  + '<div class="fs-muted">its ' + nb.length
  + ' nearest neighbours in the features of <i>' + esc(titles[k]) + '</i>' + (labelled
  ? ': ' + same + ' of ' + nb.length + ' of the same class (others framed in red)' : '')
  + '; ringed in every map</div><div class="fs-gallery">' + cells + '</div></div>';
"""
)

#: Label toggles -> show or hide the class / cluster names at centroids.
LABELS_JS = """
for (const l of class_labels) { l.visible = cb_obj.active.includes(0); }
for (const l of cluster_labels) { l.visible = cb_obj.active.includes(1); }
"""

#: Class checkboxes -> show the ticked classes, hide the others (and their names), everywhere.
VISIBLE_JS = """
const shown = new Set(cb_obj.active);
renderers.forEach((rs, c) => {
  for (const r of rs) {
    if (r.visible !== shown.has(c)) { r.visible = shown.has(c); }
  }
});
if (names.length > 0) {
  const text = names.map((name, c) => shown.has(c) ? name : '');
  centroids.data = Object.assign({}, centroids.data, {text: text});
}
"""
