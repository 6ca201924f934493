from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from featscope.errors import ParameterError
from featscope.render import (
    class_color,
    class_colors,
    embedding_title,
    plot_embedding,
    plot_embeddings,
    save_figure,
    show,
)
from featscope.results import EmbeddingResult, Provenance

NAMES = tuple(f"name{i:02d}" for i in range(60))


def make_result(labels, n_components=2, metrics=None, model="timm:resnet18", seed=0, **kw):
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    coords = rng.normal(size=(len(labels), n_components))
    return EmbeddingResult(
        coords=coords,
        labels=labels,
        class_names=NAMES,
        ids=tuple(f"s{i}" for i in range(len(labels))),
        point=kw.pop("point", "pre_logits"),
        method=kw.pop("method", "tsne"),
        metrics=metrics or {},
        provenance=Provenance(model=model, versions={}),
        **kw,
    )


def point_count(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections)


# ---------------------------------------------------------------- colours


def test_class_colour_does_not_depend_on_subset():
    full = class_colors(np.arange(10))
    alone = class_colors(np.array([7]))
    np.testing.assert_array_equal(full[7], alone[0])
    assert tuple(alone[0]) == class_color(7)
    # The reference's tab20 normalised over present labels would give a different shade for 7
    # when shown with 0..19; ours stays.
    np.testing.assert_array_equal(class_colors(np.arange(20))[7], alone[0])


def test_first_ten_colours_are_tab10():
    from matplotlib import colormaps

    tab10 = colormaps["tab10"].colors
    np.testing.assert_allclose(class_colors(np.arange(10))[:, :3], tab10, atol=1e-5)


def test_sixty_classes_get_sixty_distinct_colours():
    colours = class_colors(np.arange(60))
    assert colours.shape == (60, 4)
    assert len({tuple(np.round(c, 6)) for c in colours}) == 60
    assert np.all(colours[:, 3] == 1.0)


def test_palette_cycles_after_256():
    np.testing.assert_array_equal(class_color(256), class_color(0))
    assert class_color(255) != class_color(0)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, -1]), "negative class index -1"),
        (np.zeros((2, 2), dtype=int), "1-D array"),
        (np.array([0.5, 1.0]), "integer class indices"),
    ],
)
def test_class_colors_rejects_bad_labels(labels, match):
    with pytest.raises(ParameterError, match=match):
        class_colors(labels)


def test_class_color_rejects_negative_and_non_integer():
    with pytest.raises(ParameterError, match="negative"):
        class_color(-3)
    with pytest.raises(ParameterError, match="not an integer"):
        class_color("a")


# ---------------------------------------------------------------- plot_embedding


def test_plot_embedding_2d_points_and_colours():
    labels = np.repeat([0, 3, 5], 7)
    result = make_result(labels)
    ax = plot_embedding(result)
    assert isinstance(ax.figure, Figure)
    assert ax.name == "rectilinear"
    assert point_count(ax) == len(labels)
    offsets = ax.collections[0].get_offsets()
    # Every drawn point sits at one of the result's coordinates (drawn in shuffled order).
    assert {tuple(p) for p in np.asarray(offsets)} == {tuple(p) for p in result.coords}
    face = ax.collections[0].get_facecolors()[:, :3]
    expected = {tuple(np.round(class_color(i)[:3], 6)) for i in (0, 3, 5)}
    assert {tuple(np.round(c, 6)) for c in face} == expected
    assert list(ax.get_xticks()) == []
    assert ax.get_aspect() == 1.0


def test_plot_embedding_uses_given_axes_and_pyplot_is_untouched():
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_embedding(make_result([0, 1, 1]), ax=ax)
    assert out is ax
    assert (
        "matplotlib.pyplot" not in sys.modules
        or not __import__("matplotlib.pyplot").pyplot.get_fignums()
    )


def test_legend_lists_present_classes_in_index_order():
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat([12, 3, 7, 0], 5))
    ax = plot_embedding(make_result(labels), legend=True)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["name00", "name03", "name07", "name12"]
    handles = ax.get_legend().legend_handles
    assert [tuple(h.get_markerfacecolor()) for h in handles] == [
        class_color(i) for i in (0, 3, 7, 12)
    ]


def test_legend_goes_outside_with_columns_for_many_classes():
    ax = plot_embedding(make_result(np.arange(40)), legend=True)
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 40
    assert legend._ncols == 2
    anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0


def test_unknown_class_index_is_named_by_number():
    result = EmbeddingResult(
        coords=np.zeros((2, 2)),
        labels=[0, 4],
        class_names=("cat", "dog"),
        ids=("a", "b"),
        point="p",
        method="pca",
    )
    ax = plot_embedding(result, legend=True)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cat", "4"]


def test_3d_result_gets_3d_axes():
    result = make_result([0, 1, 2, 2], n_components=3)
    ax = plot_embedding(result)
    assert ax.name == "3d"
    assert point_count(ax) == 4


def test_3d_result_rejects_2d_axes():
    ax = Figure().add_subplot()
    with pytest.raises(ParameterError, match="needs a 3-D axes"):
        plot_embedding(make_result([0, 1], n_components=3), ax=ax)


def test_wrong_dimensions_and_types_are_rejected():
    with pytest.raises(ParameterError, match="2 or 3 components"):
        plot_embedding(make_result([0, 1], n_components=4))
    with pytest.raises(TypeError, match="takes an EmbeddingResult; got ndarray"):
        plot_embedding(np.zeros((3, 2)))
    with pytest.raises(ParameterError, match=r"`alpha` 1\.5"):
        plot_embedding(make_result([0]), alpha=1.5)
    with pytest.raises(ParameterError, match="`point_size` 0"):
        plot_embedding(make_result([0]), point_size=0)


def test_annotate_adds_one_text_per_point_in_class_colour():
    labels = np.array([0, 2, 2, 9, 11])
    ax = plot_embedding(make_result(labels), annotate=True)
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["0", "2", "2", "9", "11"]
    assert tuple(texts[3].get_color()) == class_color(9)
    # 3-D too
    ax3 = plot_embedding(make_result(labels, n_components=3), annotate=True)
    assert len(ax3.texts) == 5


def test_point_size_adapts_to_n():
    small = plot_embedding(make_result(np.zeros(100, dtype=int)))
    big = plot_embedding(make_result(np.zeros(8000, dtype=int)))
    assert small.collections[0].get_sizes()[0] == 15
    assert 1 <= big.collections[0].get_sizes()[0] < 15
    custom = plot_embedding(make_result([0, 1]), point_size=4)
    assert custom.collections[0].get_sizes()[0] == 4


def test_title_has_names_and_metrics():
    metrics = {
        "knn_accuracy_map": 0.91234,
        "knn_accuracy_features": 0.934,
        "trustworthiness": 0.951,
    }
    ax = plot_embedding(make_result([0, 1], metrics=metrics))
    first, second = ax.get_title().split("\n")
    assert first == "timm:resnet18 · pre_logits · t-SNE"
    assert second == "10-NN acc. map 0.912 · features 0.934 · trust. 0.95"


def test_title_omits_missing_metrics_and_model():
    result = make_result(
        [0, 1],
        metrics={"trustworthiness": 0.8, "knn_accuracy_features": float("nan")},
        model=None,
        method="umap",
    )
    assert embedding_title(result) == "features · pre_logits · UMAP\ntrust. 0.80"
    assert embedding_title(make_result([0], metrics={})) == "timm:resnet18 · pre_logits · t-SNE"
    ax = plot_embedding(result, title=False)
    assert ax.get_title() == ""
    ax = plot_embedding(result, title="my map")
    assert ax.get_title() == "my map"


def test_plot_embeddings_side_by_side_with_shared_legend():
    results = [
        make_result([0, 1, 1], point="backbone"),
        make_result([1, 4], point="neck"),
        make_result([0, 4, 4, 4], n_components=3, point="pre_logits"),
        make_result([2], point="logits"),
    ]
    fig = plot_embeddings(results, ncols=2, legend=True)
    axes = fig.axes
    assert len(axes) == 4
    assert [ax.name for ax in axes] == ["rectilinear", "rectilinear", "3d", "rectilinear"]
    assert [point_count(ax) for ax in axes] == [3, 2, 4, 1]
    assert all(ax.get_legend() is None for ax in axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "name00",
        "name01",
        "name02",
        "name04",
    ]
    assert "neck" in axes[1].get_title()
    # layout: 2 columns -> 2 rows
    assert axes[2].get_subplotspec().rowspan.start == 1


def test_plot_embeddings_accepts_mapping_and_rejects_bad_input():
    fig = plot_embeddings({"a": make_result([0]), "b": make_result([1])})
    assert len(fig.axes) == 2
    with pytest.raises(ParameterError, match="`results` is empty"):
        plot_embeddings([])
    with pytest.raises(ParameterError, match="`ncols` 0"):
        plot_embeddings([make_result([0])], ncols=0)


# ---------------------------------------------------------------- save / show

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "jpg": b"\xff\xd8\xff"}


def test_save_figure_writes_each_format(tmp_path):
    ax = plot_embedding(make_result([0, 1, 2]), title=False)
    paths = save_figure(ax.figure, tmp_path / "map", formats=("png", "pdf", "svg", "jpeg"), dpi=30)
    assert [p.name for p in paths] == ["map.png", "map.pdf", "map.svg", "map.jpg"]
    for path in paths:
        head = path.read_bytes()[:200]
        fmt = path.suffix[1:]
        if fmt == "svg":
            assert b"<svg" in head or b"<?xml" in head
        else:
            assert head.startswith(MAGIC[fmt])


def test_save_figure_is_deterministic_for_pdf_and_svg(tmp_path):
    result = make_result([0, 1, 2])
    a = save_figure(plot_embedding(result).figure, tmp_path / "a", ("pdf", "svg"), dpi=30)
    b = save_figure(plot_embedding(result).figure, tmp_path / "b", ("pdf", "svg"), dpi=30)
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()


def test_save_figure_rejects_unknown_format_before_writing(tmp_path):
    ax = plot_embedding(make_result([0]))
    with pytest.raises(
        ParameterError, match=r"'tiff' is not supported; choose from png, pdf, svg, jpg"
    ):
        save_figure(ax.figure, tmp_path / "x", formats=("png", "tiff"))
    assert list(tmp_path.iterdir()) == []


def test_save_figure_missing_folder_is_output_error(tmp_path):
    from featscope.errors import OutputError

    ax = plot_embedding(make_result([0]))
    with pytest.raises(OutputError, match=r"cannot write figure .*nope/x\.png"):
        save_figure(ax.figure, tmp_path / "nope" / "x")


def test_show_on_headless_backend_warns():
    fig = plot_embedding(make_result([0])).figure
    with pytest.warns(UserWarning, match="non-interactive"):
        show(fig)


def test_render_import_is_light():
    code = (
        "import sys, featscope.render as r; "
        "bad = [m for m in ('torch', 'matplotlib', 'colorcet') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_run_figures_are_one_per_map_and_an_overview():
    from featscope.render import plot_embedding_figures

    a = make_result([0, 1, 2] * 5, point="neck")
    b = make_result([0, 1, 2] * 5, point="blocks.3", method="pca")
    figures = plot_embedding_figures([a, b], legend=True, annotate=True, point_size=4)
    assert list(figures) == ["tsne_neck", "pca_blocks.3", "overview"]
    assert all(isinstance(f, Figure) for f in figures.values())
    assert len(figures["overview"].axes) == 2
    (only,) = plot_embedding_figures([a]).values()  # one map: no overview
    assert point_count(only.axes[0]) == 15


def test_png_bytes_round_trip():
    import io

    from PIL import Image

    from featscope.render import png_bytes

    picture = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(picture))))
    np.testing.assert_array_equal(decoded, picture)
    assert png_bytes(picture[..., 0]).startswith(b"\x89PNG")
    with pytest.raises(ParameterError, match=r"\(H, W, 3\) or \(H, W\) uint8; got shape"):
        png_bytes(picture.astype(np.float32))


def test_unlabelled_map_is_one_colour_without_legend_or_numbers():
    rng = np.random.default_rng(0)
    result = EmbeddingResult(
        coords=rng.normal(size=(40, 2)),
        labels=np.full(40, -1),
        class_names=(),
        ids=tuple(f"s{i}" for i in range(40)),
        point="pre_logits",
        method="tsne",
        metrics={"knn_accuracy_map": None, "trustworthiness": 0.9},
        provenance=Provenance(model="timm:resnet18", versions={}),
    )
    ax = plot_embedding(result, legend=True, annotate=True)
    assert point_count(ax) == 40
    colours = np.unique(ax.collections[0].get_facecolors()[:, :3], axis=0)
    np.testing.assert_allclose(colours, [class_color(0)[:3]])
    assert ax.get_legend() is None
    assert not ax.texts
    assert "trust. 0.90" in ax.get_title()
    assert "NN acc." not in ax.get_title()
    fig = plot_embeddings([result, make_result(np.arange(5) % 2)], legend=True)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["name00", "name01"]
