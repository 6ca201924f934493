"""--color-by: the figure follows the field asked for; bad names say what there is (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from featscope.cli import main
from featscope.data import load_samples
from featscope.errors import ParameterError
from featscope.render import plot_embedding
from featscope.render.embedding import plot_embedding_figures
from featscope.results import EmbeddingResult
from featscope.sinks import load_run


def _result(**fields):
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2])
    return EmbeddingResult(
        coords=rng.normal(size=(6, 2)),
        labels=labels,
        class_names=("a", "b", "c"),
        ids=tuple(f"s{i}" for i in range(6)),
        point="p",
        method="pca",
        fields=fields,
    )


def _facecolors(ax):
    return np.asarray(ax.collections[0].get_facecolors())


def test_color_by_changes_the_colours_and_marks_the_misclassified():
    prediction = np.array([0, 1, 1, 1, 0, 2])
    result = _result(
        prediction=prediction,
        confidence=np.linspace(0.2, 1.0, 6).astype(np.float32),
        correct=prediction == np.array([0, 0, 1, 1, 2, 2]),
        site=np.array(["x", "y", "x", "y", "x", "y"]),
    )
    by_label = _facecolors(plot_embedding(result))
    by_prediction = _facecolors(plot_embedding(result, color_by="prediction"))
    assert not np.array_equal(by_label, by_prediction)
    # the points are drawn in a fixed shuffled order: compare colour sets per sample
    assert len({tuple(c) for c in by_prediction}) == 3
    ax = plot_embedding(result, color_by="correct", legend=True)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["wrong", "right"]
    ax = plot_embedding(result, color_by="confidence")
    assert len(ax.figure.axes) == 2  # the colour bar
    assert "by confidence" in ax.get_title()
    ax = plot_embedding(result, color_by="site", legend=True)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "y"]
    # by label: the two misclassified samples carry a cross
    ax = plot_embedding(result)
    assert len(ax.collections) == 2
    assert len(ax.collections[1].get_offsets()) == 2


def test_unlabelled_maps_are_coloured_by_cluster():
    result = EmbeddingResult(
        coords=np.arange(8.0).reshape(4, 2), labels=[-1] * 4, class_names=(), ids=tuple("abcd"),
        point="p", method="pca", fields={"cluster": np.array([0, 0, 1, -1])},
    )  # fmt: skip
    ax = plot_embedding(result, legend=True)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "noise",
        "cluster 0",
        "cluster 1",
    ]


def test_unknown_field_lists_the_fields_and_missing_predictions_say_why():
    result = _result(cluster=np.zeros(6, dtype=np.int64))
    with pytest.raises(ParameterError, match=r"'weather' is not a field .* label, cluster$"):
        plot_embedding_figures([result], color_by="weather")
    with pytest.raises(ParameterError, match="has no predictions: there is no classifier output"):
        plot_embedding_figures([result], color_by="prediction")


def test_cli_color_by_metadata_from_a_file_list_and_bad_names(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = ["path,label,site,score"]
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        rows.append(f"{i}.png,{i % 2},{'north' if i < 6 else 'south'},{i / 10}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    samples = load_samples(str(tmp_path / "list.csv"))
    assert samples.metadata["site"].tolist()[:7] == ["north"] * 6 + ["south"]
    assert samples.metadata["score"].dtype == np.float64
    assert samples.subset([11, 0]).metadata["site"].tolist() == ["south", "north"]

    work = tmp_path / "w"
    args = ["tsne", "--model", "demo:digits-cnn", "--data", str(tmp_path / "list.csv")]
    fast = ["--perplexity", "3", "--n-iter", "300", "--quiet", "--work-dir", str(work)]
    assert main([*args, *fast, "--color-by", "weather"]) == 2
    err = capsys.readouterr().err
    assert "'weather' is not a field" in err
    assert "site, score" in err
    assert not work.exists() or not any(p.name.startswith("tsne_") for p in work.iterdir())
    # the demo model has 10 outputs, the list 2 classes: no predictions, and the reason
    assert main([*args, *fast, "--color-by", "prediction"]) == 2
    assert "10 outputs but the data 2 classes" in capsys.readouterr().err

    assert main([*args, *fast, "--color-by", "site"]) == 0
    (run_dir,) = [p for p in work.iterdir() if p.name.startswith("tsne_")]
    header = (run_dir / "coords_pre_logits.csv").read_text().splitlines()[0]
    assert header == "id,label,class_name,x,y,site,score,cluster"
    loaded = load_run(run_dir).embedding("pre_logits")
    assert loaded.fields["site"].tolist()[:2] == ["north", "north"]
    assert loaded.fields["score"].dtype == np.float64
    assert loaded.fields["cluster"].dtype == np.int64
    metrics = json.loads((run_dir / "metrics.json").read_text())["pre_logits"]
    assert 0.5 <= metrics["cluster_purity"] <= 1.0


def test_names_no_map_can_have_fail_before_any_image_is_read(tmp_path, capsys):
    from featscope.render.colorby import check_field_name

    check_field_name("site", ["site"], classifier=False)
    check_field_name("confidence", [], classifier=True)
    with pytest.raises(ParameterError, match="no predictions: there is no classifier output"):
        check_field_name("correct", ["site"], classifier=False)
    with pytest.raises(ParameterError, match=r"fields there are: label, cluster, site$"):
        check_field_name("weather", ["site"], classifier=False)
    # saved features carry no classifier output: refused before anything is mapped
    np.save(tmp_path / "f.npy", np.zeros((12, 3), dtype=np.float32))
    np.save(tmp_path / "l.npy", np.arange(12) % 2)
    args = ["tsne", "--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "l.npy")]
    assert main([*args, "--color-by", "prediction", "--work-dir", str(tmp_path / "w")]) == 2
    assert "no classifier output" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_overview_with_a_field_gives_each_map_its_own_legend():
    from featscope.render.embedding import plot_embeddings

    a = _result(cluster=np.array([0, 0, 1, 1, 2, 2]))
    fig = plot_embeddings([a, a], color_by="cluster", legend=True)
    assert [len(ax.get_legend().get_texts()) for ax in fig.axes] == [3, 3]
    assert not fig.legends  # no shared class legend
