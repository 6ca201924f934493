"""featscope.shape_bias on tiny models and a few stimuli; shape_bias_from_csv on the shared csvs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import featscope
from featscope.analysis.shape_bias import CATEGORIES
from featscope.data.cue_conflict import read_decisions
from featscope.errors import DataError, ParameterError
from featscope.options import Extraction, Figures, Output

NOWHERE = Output(work_dir=None)
QUIET = Extraction(batch_size=4, amp="off", progress=False)

STIMULI = Path("/work/shared/data/cue-conflict")
CSV_DIR = Path("/work/shared/data/model-vs-human-cue-conflict")

# shape, texture -> decision of a model that always answers "airplane":
FEW = [
    "airplane/airplane1-bicycle2.png",  # shape
    "airplane/airplane10-airplane1.png",  # excluded (no conflict)
    "airplane/airplane2-bicycle1.png",  # shape
    "bicycle/bicycle1-airplane2.png",  # texture
    "bicycle/bicycle2-bicycle1.png",  # excluded
    "clock/clock1-bear1.png",  # other
]


class Constant(nn.Module):
    """Logits that always favour output ``winner`` (the image still runs through a layer)."""

    def __init__(self, n_out: int, winner: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, n_out)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.bias[winner] = 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def stimuli(tmp_path):
    root = tmp_path / "cue-conflict"
    for name in FEW:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STIMULI / name, root / name)
    return root


def test_imagenet_model_run_writes_csv_json_and_figures(stimuli, tmp_path):
    run = featscope.shape_bias(
        Constant(1000, 404),  # ImageNet class 404 = airliner = "airplane"
        stimuli,
        model_name="always_airplane",
        extraction=QUIET,
        output=Output(work_dir=tmp_path / "runs", export=tmp_path / "copy.csv"),
    )
    stats = run["always_airplane"]
    assert (stats.n_shape, stats.n_texture, stats.n_other, stats.n_excluded) == (2, 1, 1, 2)
    assert run.shape_bias == pytest.approx(2 / 3)
    assert run.shown == ("humans", "always_airplane")
    assert run["humans"].shape_bias == pytest.approx(0.9587, abs=5e-5)
    names = sorted(p.name for p in run.run_dir.iterdir())
    assert names == [
        "cue-conflict_always-airplane_session-1.csv",
        "manifest.json",
        "run.log",
        "shape_bias.json",
        "shape_bias.pdf",
        "shape_bias.png",
    ]
    table = read_decisions(run.run_dir / "cue-conflict_always-airplane_session-1.csv")
    assert table.subj == ("always_airplane",) * 6
    assert table.object_response == ("airplane",) * 6
    assert table.category == ("airplane",) * 3 + ("bicycle",) * 2 + ("clock",)
    assert table.imagename[0] == "airplane1-bicycle2.png"
    assert table.trial == tuple(str(i) for i in range(1, 7))
    assert table.rt == ("NaN",) * 6
    saved = json.loads((run.run_dir / "shape_bias.json").read_text())
    assert set(saved) == {"always_airplane", "humans"}
    entry = saved["always_airplane"]
    assert entry["shape_bias"] == pytest.approx(2 / 3)
    assert (entry["n_shape"], entry["n_texture"], entry["n_other"]) == (2, 1, 1)
    assert entry["per_category"]["clock"]["shape_bias"] is None  # NaN: only "other" decisions
    assert entry["per_category"]["airplane"]["shape_bias"] == 1.0
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert "always_airplane" in json.dumps(manifest)
    entry = manifest["results"]["always_airplane"]
    assert entry["metrics"]["shape_bias"] == pytest.approx(2 / 3)
    assert entry["params"] == {"mapping": "featscope:imagenet_16.json"}
    assert entry["provenance"]["source"] == str(stimuli)
    # --out copies the decision csv, byte for byte, once the run folder is finished
    assert run.exported == (tmp_path / "copy.csv",)
    csv_file = run.run_dir / "cue-conflict_always-airplane_session-1.csv"
    assert (tmp_path / "copy.csv").read_bytes() == csv_file.read_bytes()
    assert [f.name for f in run.files] == [
        "cue-conflict_always-airplane_session-1.csv",
        "shape_bias.json",
        "shape_bias.png",
        "shape_bias.pdf",
    ]


def test_sixteen_output_model_and_no_work_dir(stimuli):
    run = featscope.shape_bias(
        Constant(16, CATEGORIES.index("bicycle")), stimuli, extraction=QUIET, output=NOWHERE
    )
    assert run.run_dir is None
    assert run.files == ()
    assert run.model_name == "Constant"
    stats = run.stats[run.model_name]
    assert (stats.n_shape, stats.n_texture, stats.n_other) == (1, 2, 1)
    assert run.shape_bias == pytest.approx(1 / 3)


def test_user_mapping_for_other_outputs(stimuli, tmp_path):
    mapping = {c: [k] for k, c in enumerate(CATEGORIES)}  # classes 0-15, output 20 wide
    mapping["clock"] = [9, 19]
    path = tmp_path / "map.json"
    path.write_text(json.dumps(mapping))
    run = featscope.shape_bias(
        Constant(20, 19), stimuli, mapping=path, extraction=QUIET, output=NOWHERE
    )
    assert run.decisions.object_response == ("clock",) * 6
    stats = run.stats[run.model_name]
    assert (stats.n_shape, stats.n_texture, stats.n_other) == (1, 0, 3)


def test_output_neither_1000_nor_16_without_mapping(stimuli):
    with pytest.raises(ParameterError, match=r"outputs 10 classes; shape bias needs 1000.*mapping"):
        featscope.shape_bias(Constant(10, 0), stimuli, extraction=QUIET, output=NOWHERE)


def test_bad_inputs_fail_before_the_model_runs(tmp_path, stimuli):
    not_layout = tmp_path / "photos"
    (not_layout / "misc").mkdir(parents=True)
    with pytest.raises(DataError, match="not in the cue-conflict layout"):
        featscope.shape_bias(Constant(16, 0), not_layout, output=NOWHERE)
    with pytest.raises(ParameterError, match="`model_name` 'a/b'"):
        featscope.shape_bias(Constant(16, 0), stimuli, model_name="a/b", output=NOWHERE)
    with pytest.raises(ParameterError, match="figure format 'gif'"):
        featscope.shape_bias(Constant(16, 0), stimuli, figures=Figures(formats=("gif",)))
    with pytest.raises(ParameterError, match=r"`--out` .* work_dir is None; pass a work_dir"):
        featscope.shape_bias(
            Constant(16, 0), stimuli, output=Output(work_dir=None, export=tmp_path / "x")
        )


def test_from_csv_reproduces_the_published_numbers_and_draws(tmp_path):
    run = featscope.shape_bias_from_csv(
        CSV_DIR,
        models=["resnet50", "resnet50_trained_on_SIN"],
        colors=["tab:blue", "0,128,0"],
        markers=["o", "s"],
        figures=Figures(formats=("png",)),
        output=Output(work_dir=tmp_path / "runs", export=tmp_path / "figs"),
    )
    assert round(100 * run["resnet50"].shape_bias, 1) == 21.4
    assert round(100 * run["humans"].shape_bias, 1) == 95.9
    assert round(100 * run["resnet50_trained_on_SIN"].shape_bias, 1) == 81.4
    assert run.shown == ("humans", "resnet50", "resnet50_trained_on_SIN")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "shape_bias.json",
        "shape_bias.png",
    ]
    saved = json.loads((tmp_path / "figs" / "shape_bias.json").read_text())
    assert {"humans", "subject-01", "subject-10", "bagnet33", "clip"} <= set(saved)
    assert saved["resnet50"]["n_shape"] == 169
    # the numbers are copied last, after the figures they describe
    assert [p.name for p in run.exported] == ["shape_bias.png", "shape_bias.json"]
    assert (run.run_dir / "shape_bias.json").read_bytes() == (
        tmp_path / "figs" / "shape_bias.json"
    ).read_bytes()
    with pytest.raises(ParameterError):
        run.shape_bias  # noqa: B018 - a run from csvs has no single model


def test_from_csv_without_humans_uses_the_reference(tmp_path):
    shutil.copy(CSV_DIR / "cue-conflict_resnet50_session-1.csv", tmp_path)
    run = featscope.shape_bias_from_csv(
        tmp_path, figures=Figures(formats=("png",)), output=Output(work_dir=tmp_path / "runs")
    )
    assert run.shown == ("humans", "resnet50")
    assert run["humans"].shape_bias == pytest.approx(0.9587, abs=5e-5)
    assert run.run_dir.parent == tmp_path / "runs"
    assert (run.run_dir / "shape_bias.png").exists()


def test_from_csv_errors(tmp_path):
    with pytest.raises(DataError, match=r"'vit-b-16' not in the csvs \(did you mean vit_b_16\?\)"):
        featscope.shape_bias_from_csv(CSV_DIR, models=["vit-b-16"], output=NOWHERE)
    with pytest.raises(ParameterError, match="1 colours given for 2 decision makers"):
        featscope.shape_bias_from_csv(
            CSV_DIR, models=["alexnet", "clip"], colors=["red"], output=NOWHERE
        )
    with pytest.raises(ParameterError, match="'notacolour' is not a colour"):
        featscope.shape_bias_from_csv(
            CSV_DIR, models=["alexnet"], colors=["notacolour"], output=NOWHERE
        )
    twice = tmp_path / "twice"
    twice.mkdir()
    for name in ("a.csv", "b.csv"):
        shutil.copy(CSV_DIR / "cue-conflict_alexnet_session-1.csv", twice / name)
    with pytest.raises(DataError, match=r"'alexnet' is in both .*a.csv.*b.csv"):
        featscope.shape_bias_from_csv(twice, output=NOWHERE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.csv files"):
        featscope.shape_bias_from_csv(tmp_path / "empty", output=NOWHERE)
    with pytest.raises(DataError, match="does not exist"):
        featscope.shape_bias_from_csv(tmp_path / "missing", output=NOWHERE)


def test_figure_rows_follow_the_humans(tmp_path):
    from featscope.analysis.shape_bias import human_order, reference_humans
    from featscope.render.shape_bias import plot_shape_bias

    humans = reference_humans()
    ax = plot_shape_bias([humans])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(human_order(humans))
    assert labels[0] == "bicycle"  # most shape-biased category at the bottom
    # one vertical line per decision maker at its overall texture fraction
    xs = [line.get_xdata()[0] for line in ax.get_lines()]
    assert xs[0] == pytest.approx(1 - humans.shape_bias)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Humans (95.9 %)"]
    assert np.isclose(ax.get_xlim(), (0.0, 1.0)).all()


def test_figure_styles_pair_with_the_given_order():
    from matplotlib.colors import to_rgba

    from featscope.analysis.shape_bias import reference_humans
    from featscope.render.shape_bias import HUMAN_COLOR, plot_shape_bias

    humans = reference_humans()
    model = type(humans).from_counts("m", {"cat": {"n_shape": 1, "n_texture": 3, "n_other": 0}})
    ax = plot_shape_bias([model, humans], colors=["tab:green", "black"], markers=["s", "o"])
    by_label = {
        t.get_text(): h
        for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)
    }
    assert list(by_label) == ["Humans (95.9 %)", "m (25.0 %)"]
    assert tuple(by_label["Humans (95.9 %)"].get_facecolor()[0]) == to_rgba("black")
    assert tuple(by_label["m (25.0 %)"].get_facecolor()[0]) == to_rgba("tab:green")
    default = plot_shape_bias([model])  # humans from the reference, in their own colour
    handles = default.get_legend().legend_handles
    assert tuple(handles[0].get_facecolor()[0]) == to_rgba(HUMAN_COLOR)
    with pytest.raises(ParameterError, match="marker 'bogus'"):
        plot_shape_bias([model], markers=["bogus"])


def test_unreadable_stimulus_fails_or_is_skipped(stimuli, tmp_path):
    (stimuli / "bicycle" / "bicycle1-airplane2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image .*bicycle1-airplane2.png"):
        featscope.shape_bias(Constant(1000, 404), stimuli, extraction=QUIET, output=NOWHERE)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        run = featscope.shape_bias(
            Constant(1000, 404),
            stimuli,
            model_name="always_airplane",
            extraction=Extraction(skip_bad_images=True, progress=False),
            figures=Figures(formats=("png",)),
            output=Output(work_dir=tmp_path / "runs"),
        )
    stats = run["always_airplane"]  # the texture decision on the unreadable image is gone
    assert (stats.n_shape, stats.n_texture, stats.n_other, stats.n_excluded) == (2, 0, 1, 2)
    assert "bicycle1-airplane2.png" not in run.decisions.imagename
    table = read_decisions(run.run_dir / "cue-conflict_always-airplane_session-1.csv")
    assert len(table) == 5
    assert table.trial == tuple(str(i) for i in range(1, 6))


def test_failed_run_leaves_the_export_folder_as_it_was(tmp_path, monkeypatch):
    """A run that fails writes nothing to --out: an earlier result there stays whole."""
    import featscope.render
    from featscope.errors import OutputError

    out = tmp_path / "figs"
    out.mkdir()
    (out / "shape_bias.json").write_text("{}")  # from an earlier run

    def fail(*args, **kwargs):
        raise OutputError("disk full")

    monkeypatch.setattr(featscope.render, "save_figure", fail)
    with pytest.raises(OutputError, match="disk full"):
        featscope.shape_bias_from_csv(
            CSV_DIR / "cue-conflict_resnet50_session-1.csv",
            figures=Figures(formats=("png",)),
            output=Output(work_dir=tmp_path / "runs", export=out),
        )
    # no json that looks like this run's finished result: out is as the earlier run left it
    assert [p.name for p in out.iterdir()] == ["shape_bias.json"]
    assert (out / "shape_bias.json").read_text() == "{}"
    assert list((tmp_path / "runs").iterdir()) == []  # no run folder either


def test_export_copies_the_figures_before_the_json(tmp_path, monkeypatch):
    """A copy that fails half-way leaves no json in --out without its figures."""
    import errno
    import shutil as shell

    from featscope.errors import OutputError

    out = tmp_path / "figs"
    real = shell.copyfile

    def copyfile(src, dst, *args, **kwargs):
        if Path(src).suffix == ".pdf":
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shell, "copyfile", copyfile)
    with pytest.raises(OutputError, match="No space left on device"):
        featscope.shape_bias_from_csv(
            CSV_DIR / "cue-conflict_resnet50_session-1.csv",
            output=Output(work_dir=tmp_path / "runs", export=out),
        )
    assert list(out.iterdir()) == []
    (run_dir,) = (tmp_path / "runs").iterdir()  # the finished run folder is the record
    assert (run_dir / "manifest.json").is_file()
