"""embedding.html in tsne run folders, `featscope compare`, and their command-line flags."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _page_helpers import make_results, tile_thumbnails

import featscope
from featscope.cli import main
from featscope.errors import DataError, ParameterError
from featscope.options import EmbeddingOptions, Extraction, Output, Selection
from featscope.sinks import LocalRun
from featscope.sinks.compare import read_tsne_run, read_tsne_runs, run_names
from featscope.views.compare import compare

WEBP = r"data:image/webp;base64,[A-Za-z0-9+/=]+"


def _fake_tsne_run(work, results, thumbs=None, rows=None, name=None):
    """A run folder laid out as featscope.tsne writes it, without running a model."""
    with LocalRun(work, "tsne", name=name) as run:
        for r in results:
            run.write_embedding(r, r.point)
        run.write_text("ids.txt", "\n".join(results[0].ids) + "\n")
        run.write_text("class_names.txt", "\n".join(results[0].class_names) + "\n")
        run.write_array("labels.npy", results[0].labels)
        if thumbs is not None:
            run.write_array("thumbnails.npy", thumbs)
            run.write_array("thumbnail_rows.npy", np.asarray(rows))
    return run.final_path


@pytest.fixture
def two_runs(tmp_path):
    a0, a1 = make_results(n_per_class=5, seed=1)  # 20 samples, ids img/0000..0019
    b0, _ = make_results(n_per_class=5, seed=2)
    # run b holds samples 5..19 only, in reverse order, plus one sample a lacks
    keep = list(range(19, 4, -1))
    b0 = b0.__class__(
        coords=np.vstack([b0.coords[keep], [[0.0, 0.0]]]),
        labels=np.append(b0.labels[keep], 0),
        class_names=b0.class_names,
        ids=(*[b0.ids[i] for i in keep], "other.png"),
        point="layer4",
        method="umap",
        metrics={"trustworthiness": 0.5},
    )
    run_a = _fake_tsne_run(tmp_path, [a0, a1], tile_thumbnails(2), [5, 6], name="run_a")
    run_b = _fake_tsne_run(tmp_path, [b0], name="run_b")
    return run_a, run_b, (a0, a1, b0)


def test_read_tsne_run_gives_back_the_maps_and_thumbnails(two_runs):
    run_a, _, (a0, a1, _) = two_runs
    results, thumbs = read_tsne_run(run_a)
    assert [r.point for r in results] == ["stage0", "stage1"]
    np.testing.assert_allclose(results[1].coords, a1.coords)
    assert results[0].ids == a0.ids
    assert results[0].metrics["knn_accuracy_map"] == pytest.approx(0.9)
    assert results[0].params["perplexity"] == 30.0
    assert results[0].provenance.model == "demo:digits-cnn"
    assert sorted(thumbs) == ["img/0005.png", "img/0006.png"]
    assert all(u.startswith("data:image/webp;base64,") for u in thumbs.values())


def test_read_tsne_runs_names_each_map_by_its_run_and_keeps_the_points(two_runs):
    run_a, run_b, (_, _, b0) = two_runs
    names, maps, thumbs = read_tsne_runs([run_a, run_b])
    assert names == ["run_a", "run_b"]
    assert [(name, r.point) for name, r in maps] == [
        ("run_a", "stage0"),
        ("run_a", "stage1"),
        ("run_b", "layer4"),
    ]
    assert maps[2][1].ids == b0.ids
    assert sorted(thumbs) == ["img/0005.png", "img/0006.png"]
    with pytest.warns(UserWarning, match=r"run 'run_b' has no map of the points \['stage1'\]"):
        names, maps, _ = read_tsne_runs([run_a, run_b], ["stage1"])
    assert names == ["run_a", "run_b"]  # the run left out still names the comparison
    assert [(name, r.point) for name, r in maps] == [("run_a", "stage1")]
    with pytest.raises(ParameterError, match=r"the runs have \['stage0', 'stage1', 'layer4'\]"):
        read_tsne_runs([run_a, run_b], ["nope"])


def test_run_names_are_folder_names_made_unique(tmp_path):
    assert run_names([tmp_path / "a" / "tsne_1", tmp_path / "b" / "tsne_2"]) == [
        "tsne_1",
        "tsne_2",
    ]
    assert run_names([tmp_path / "a" / "tsne_x", tmp_path / "b" / "tsne_x"]) == [
        "a/tsne_x",
        "b/tsne_x",
    ]


def test_compare_links_runs_by_sample_id(two_runs, tmp_path):
    run_a, run_b, (a0, _, b0) = two_runs
    with pytest.warns(UserWarning, match="only 15 samples are in every run"):
        out = compare(
            [run_a, run_b], output=Output(work_dir=tmp_path / "wd", export=tmp_path / "cmp.html")
        )
    assert out.page == tmp_path / "cmp.html"
    # the copy is made from the finished run folder, which holds the same page
    assert out.page.read_bytes() == (out.run_dir / "compare.html").read_bytes()
    assert out.n_dropped == 5
    # titled by model and point (issue 16), not by the run folders' timestamps
    assert out.titles == (
        "demo:digits-cnn · stage0 · t-SNE",
        "demo:digits-cnn · stage1 · t-SNE",
        "features · layer4 · UMAP",  # run b mapped saved features
    )
    expected_ids = a0.ids[5:]
    for r in out.results:
        assert r.ids == expected_ids
    # run b's coordinates were re-ordered to run a's sample order, then turned onto the map
    # before it (--align procrustes): the same map up to rotation/reflection and shift
    b_row = {sample_id: k for k, sample_id in enumerate(b0.ids)}
    b_rows = b0.coords[[b_row[i] for i in expected_ids]]
    turned = out.results[2].coords
    assert not np.allclose(turned, b_rows)
    from scipy.spatial.distance import pdist

    np.testing.assert_allclose(pdist(turned), pdist(b_rows), rtol=1e-9, atol=1e-9)
    assert out.results[2].params["aligned_to"] == "stage1"
    with pytest.warns(UserWarning, match="every run"):
        independent = compare([run_a, run_b], output=Output(work_dir=None), align="none")
    np.testing.assert_allclose(independent.results[2].coords, b_rows)
    assert "aligned_to" not in independent.results[2].params
    text = out.page.read_text(encoding="utf-8")
    assert len(re.findall(WEBP, text)) == 2  # run a's two thumbnails, both in the common set
    assert text.count('"output_backend":"webgl"') == 3
    assert "http://" not in text
    assert "https://" not in text


def test_compare_points_and_run_folder_and_errors(two_runs, tmp_path):
    run_a, run_b, _ = two_runs
    work = tmp_path / "work"
    with pytest.warns(UserWarning, match="every run"):
        out = compare([run_a, run_b], points=["stage1", "layer4"], output=Output(work_dir=work))
    assert [r.point for r in out.results] == ["stage1", "layer4"]
    # the points in the order given, within each run, in the order given
    _names, maps, _ = read_tsne_runs([run_a], ["stage1", "stage0"])
    assert [r.point for _, r in maps] == ["stage1", "stage0"]
    assert out.run_dir.parent == work
    assert out.run_dir.name.startswith("compare_")
    assert (out.run_dir / "manifest.json").is_file()
    assert out.page == out.run_dir / "compare.html"
    with pytest.raises(ParameterError, match="none of the runs has a map"):
        compare([run_a], points=["nope"], output=Output(work_dir=None))
    with pytest.raises(DataError, match=r"no manifest\.json"):
        compare([tmp_path], output=Output(work_dir=tmp_path / "wd", export=tmp_path / "x.html"))
    with pytest.raises(DataError, match="does not exist"):
        compare(
            [tmp_path / "missing"],
            output=Output(work_dir=tmp_path / "wd", export=tmp_path / "x.html"),
        )
    with pytest.raises(ParameterError, match="empty"):
        compare([], output=Output(work_dir=tmp_path / "wd", export=tmp_path / "x.html"))


def test_compare_names_the_points_the_runs_have(two_runs, tmp_path):
    run_a, run_b, _ = two_runs
    with pytest.raises(ParameterError, match=r"the runs have \['stage0', 'stage1', 'layer4'\]"):
        compare(
            [run_a, run_b],
            points=["nope"],
            output=Output(work_dir=tmp_path / "wd", export=tmp_path / "x.html"),
        )
    # run_b has no stage0: it is left out of the page, with a warning naming it
    with pytest.warns(UserWarning, match=r"run 'run_b' has no map of the points \['stage0'\]"):
        out = compare(
            [run_a, run_b],
            points=["stage0"],
            output=Output(work_dir=tmp_path / "wd", export=tmp_path / "y.html"),
        )
    assert out.titles == ("demo:digits-cnn · stage0 · t-SNE",)


def test_compare_runs_with_no_common_sample_fail(tmp_path):
    (a,) = make_results(maps=1)
    b = a.__class__(**{**a.__dict__, "ids": tuple(f"x{i}" for i in range(len(a.ids)))})
    run_a = _fake_tsne_run(tmp_path, [a], name="a")
    run_b = _fake_tsne_run(tmp_path, [b], name="b")
    with pytest.raises(DataError, match="share no sample id"):
        compare([run_a, run_b], output=Output(work_dir=tmp_path / "wd", export=tmp_path / "x.html"))


def test_cli_compare(two_runs, tmp_path, capsys):
    run_a, run_b, _ = two_runs
    page = tmp_path / "c.html"
    wd = ["--work-dir", str(tmp_path / "wd")]
    assert main(["compare", str(run_a), str(run_b), "--out", str(page), "--quiet", *wd]) == 0
    printed = capsys.readouterr().out
    assert "3 maps of 15 common samples (5 not in every run left out)" in printed
    assert page.is_file()
    assert main(["compare", str(tmp_path / "nothing"), "--out", str(page), *wd]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(run_a), str(run_b), "--align", "none", "--quiet", *wd]) == 0
    assert "3 maps of 15 common samples" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(run_a), str(run_b), "--align", "sideways", *wd])
    assert exc.value.code == 2
    assert "--align" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Two real runs of the demo model: PCA (fast), 2 points, 4 samples a class."""
    work = tmp_path_factory.mktemp("tsne_page")
    common = ["tsne", "--model", "demo:digits-cnn", "--method", "pca", "--quiet"]
    common += ["--max-num-samples", "4", "--work-dir", str(work)]
    assert main([*common, "--vis-stage", "neck", "pre_logits", "--thumbnails", "7"]) == 0
    first = sorted(work.iterdir())
    assert main([*common, "--vis-stage", "neck", "--no-html"]) == 0
    second = [p for p in sorted(work.iterdir()) if p not in first]
    return first[0], second[0]


def test_tsne_writes_the_page_with_capped_thumbnails(cli_runs):
    with_html, _ = cli_runs
    page = (with_html / "embedding.html").read_text(encoding="utf-8")
    assert len(re.findall(WEBP, page)) == 7
    assert page.count('"output_backend":"webgl"') == 2  # neck and pre_logits side by side
    assert r"neck \u00b7 PCA" in page  # map titles, JSON-encoded
    assert r"pre_logits \u00b7 PCA" in page
    thumbs = np.load(with_html / "thumbnails.npy")
    rows = np.load(with_html / "thumbnail_rows.npy")
    assert thumbs.shape == (7, 48, 48, 3)
    assert thumbs.dtype == np.uint8
    assert len(rows) == 7
    assert rows.max() < 40
    manifest = (with_html / "manifest.json").read_text()
    assert "embedding.html" in manifest


def test_no_html_skips_the_page(cli_runs, tmp_path):
    _, without = cli_runs
    assert not (without / "embedding.html").exists()
    assert not (without / "thumbnails.npy").exists()
    # and compare reuses the first run's thumbnails for the samples both runs share
    with_html, _ = cli_runs
    out = compare(
        [with_html, without], output=Output(work_dir=tmp_path / "wd", export=tmp_path / "c.html")
    )
    assert len(out.results) == 3
    assert len(re.findall(WEBP, out.page.read_text(encoding="utf-8"))) == 7


def test_api_flags(tmp_path):
    with pytest.raises(ParameterError, match=r"`--thumbnails` \(thumbnails=\) must be a count"):
        featscope.tsne(output=Output(work_dir=tmp_path), thumbnails=-3)
    run = featscope.tsne(
        model="demo:digits-cnn",
        points=["pre_logits"],
        embedding=EmbeddingOptions(method="pca"),
        selection=Selection(max_num_samples=2),
        extraction=Extraction(progress=False),
        output=Output(work_dir=tmp_path),
        thumbnails=0,
    )
    assert run.page == run.run_dir / "embedding.html"
    assert run.page.is_file()
    assert "data:image/webp" not in run.page.read_text(encoding="utf-8")
    assert "page" in run.timings


def test_missing_bokeh_names_the_fix_and_tsne_still_writes_its_run(monkeypatch, tmp_path):
    import sys

    from featscope.errors import MissingExtraError
    from featscope.render.page import build_page

    monkeypatch.setitem(sys.modules, "bokeh", None)  # `import bokeh` now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'bokeh>=3\.4'.*--no-html"):
        build_page(make_results(n_per_class=2, maps=1))
    features = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    np.savez(features, features=rng.normal(size=(12, 5)), labels=np.repeat([0, 1, 2], 4))
    with pytest.warns(UserWarning, match="no embedding.html"):
        run = featscope.tsne(
            features=features,
            embedding=EmbeddingOptions(method="pca"),
            output=Output(work_dir=tmp_path),
        )
    assert run.page is None
    assert len(list(run.run_dir.glob("coords_*.csv"))) == 1  # the map itself was written
    assert not (run.run_dir / "embedding.html").exists()


def test_map_titles_tell_the_same_model_apart_by_checkpoint_then_run():
    from dataclasses import replace

    from featscope.sinks.compare import map_titles

    (a,) = make_results(maps=1)
    with_ckpt = replace(a, provenance=replace(a.provenance, checkpoint="/x/epoch_3.pth"))
    other = replace(a, provenance=replace(a.provenance, checkpoint="/x/epoch_9.pth"))
    model = a.provenance.model
    assert map_titles(["r1", "r2"], [("r1", with_ckpt), ("r2", other)]) == [
        f"{model} (epoch_3.pth) · {a.point} · t-SNE",
        f"{model} (epoch_9.pth) · {a.point} · t-SNE",
    ]
    assert map_titles(["r1", "r2"], [("r1", a), ("r2", a)]) == [
        f"{model} [r1] · {a.point} · t-SNE",
        f"{model} [r2] · {a.point} · t-SNE",
    ]
