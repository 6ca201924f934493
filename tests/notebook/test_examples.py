"""The notebooks of examples/ run in a real Jupyter kernel, and show what they promise.

Each notebook is executed once per module by nbclient in a fresh ipykernel, in an empty folder;
the outputs are then read back as a notebook user would see them: the page inline, the frames
with their rows, the pictures at their size, and nothing written to disk.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from _notebook_helpers import decode_png, html_images, iframe_page

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _execute(name: str, folder: Path) -> dict[str, dict]:
    """Run ``examples/<name>`` in ``folder``; return its code cells by tag."""
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": os.fspath(folder)}},
    )
    client.execute()  # a cell that raises fails here, with the cell and its traceback
    return {tag: cell for cell in notebook.cells for tag in cell.metadata.get("tags", [])}


def _result(cell: dict, mime: str) -> str:
    """Return the ``mime`` data of the cell's result (its last expression, or a display)."""
    for output in cell["outputs"]:
        if output["output_type"] in ("execute_result", "display_data") and mime in output["data"]:
            return output["data"][mime]
    kinds = [(o["output_type"], sorted(o.get("data", {}))) for o in cell["outputs"]]
    raise AssertionError(f"no {mime} output in cell {cell['source'][:60]!r}: {kinds}")


def _stdout(cell: dict) -> str:
    return "".join(o["text"] for o in cell["outputs"] if o.get("name") == "stdout")


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quickstart")
    return _execute("quickstart.ipynb", folder), folder


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    pytest.importorskip("torchvision")  # the notebook browses through torchvision's transforms
    folder = tmp_path_factory.mktemp("own_data")
    return _execute("own_dataset_and_model.ipynb", folder), folder


def test_quickstart_shows_the_page_inline_with_thumbnails(quickstart):
    cells, _ = quickstart
    page = iframe_page(_result(cells["map-page"], "text/html"))
    assert page.startswith("<!DOCTYPE html>")
    assert "Bokeh" in page
    assert page.count("data:image/webp;base64,") >= 100  # 10 digits per class, with pictures
    assert _stdout(cells["map-repr"]).startswith("<TsneRun: 3 maps of 100 samples, 10 of 10")
    assert iframe_page(_result(cells["one-map"], "text/html")).startswith("<!DOCTYPE html>")


def test_quickstart_frames_have_the_rows(quickstart):
    cells, _ = quickstart
    rows, columns = ast.literal_eval(_result(cells["frame-shape"], "text/plain"))
    assert rows == 300  # 3 points x 100 samples
    head = _result(cells["frame-head"], "text/html")
    assert "<table" in head
    for column in ("point", "id", "label", "class_name", "x", "y", "prediction"):
        assert f"<th>{column}</th>" in head
    assert columns == head.split("</thead>")[0].count("<th>") - 1  # all but the index
    metrics = _result(cells["metrics"], "text/html")
    assert metrics.split("<tbody>")[1].count("<tr>") == 3  # one row per map
    for point in ("neck", "pre_logits"):
        assert f"<td>{point}</td>" in metrics
    assert "knn_accuracy_map" in metrics


def test_quickstart_pictures_have_their_size(quickstart):
    cells, _ = quickstart
    shown = [p.shape for p in html_images(_result(cells["featmap"], "text/html"))]
    assert shown == ast.literal_eval(_result(cells["featmap-shapes"], "text/plain"))
    assert len(shown) == 3
    recon = html_images(_result(cells["recon"], "text/html"))
    n_images = int(_result(cells["recon-len"], "text/plain"))
    assert len(recon) == 4 * n_images  # four panels per image
    assert _result(cells["recon-frame"], "text/html").count("fashion-mnist-test-") == 2 * n_images
    assert {p.shape for p in recon} == {(28, 28, 3)}


def test_quickstart_writes_nothing(quickstart):
    _, folder = quickstart
    assert sorted(os.listdir(folder)) == []


def test_own_data_notebook_maps_the_users_model(own_data):
    cells, folder = own_data
    page = iframe_page(_result(cells["map-page"], "text/html"))
    assert page.count("data:image/webp;base64,") >= 60
    assert "circle" in page
    rows, columns = ast.literal_eval(_result(cells["frame-shape"], "text/plain"))
    assert rows == 120  # 2 points x 60 shapes
    assert columns >= 6  # point, id, label, class_name, x, y, then predictions
    groups = _result(cells["frame-groups"], "text/plain")
    assert groups.count("20") == 6  # 2 points x 3 classes of 20 shapes
    shown = [p.shape for p in html_images(_result(cells["featmap"], "text/html"))]
    assert shown == ast.literal_eval(_result(cells["featmap-shapes"], "text/plain"))
    assert len(shown) == 4  # 2 images x 2 points
    [show] = [o for o in cells["show"]["outputs"] if o["output_type"] == "display_data"]
    assert decode_png(show["data"]["image/png"]).shape == shown[0]
    browsed = [p.shape for p in html_images(_result(cells["browse"], "text/html"))]
    expected = ast.literal_eval(_result(cells["browse-shapes"], "text/plain"))
    assert browsed == [shape for sample in expected for shape in sample]
    assert len(expected) == 3
    assert sorted(os.listdir(folder)) == []
