"""manifest.json: the results with their provenance, the files with their hashes, nothing hidden."""

from __future__ import annotations

import json

from _sinks_helpers import make_result

from featscope.sinks import LocalRun


def test_manifest_records_results_provenance_params_metrics(tmp_path):
    result = make_result()
    with LocalRun(tmp_path, "tsne") as run:
        run.write_embedding(result, "pre_logits")
        run.add_metadata("options", {"perplexity": 30, "classes": (0, 1)})
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    entry = manifest["results"]["pre_logits"]
    assert entry["params"] == {"init": "pca", "perplexity": 30.0}
    assert entry["metrics"] == {"trustworthiness": 0.9}
    assert entry["point"] == "pre_logits"
    assert entry["n_samples"] == 4
    assert entry["provenance"]["model"] == "timm:resnet18"
    assert entry["provenance"]["seed"] == 3
    assert manifest["metadata"] == {"options": {"classes": [0, 1], "perplexity": 30}}
    assert manifest["featscope_version"]
    assert manifest["created"] <= manifest["finished"]


def test_stray_temp_files_are_not_listed(tmp_path):
    with LocalRun(tmp_path, "tsne") as run:
        (run.path / ".x.tmp-1").write_text("torn")
        run.write_text("a.txt", "x")
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["a.txt", "run.log"]
    assert sorted(p.name for p in run.final_path.iterdir()) == ["a.txt", "manifest.json", "run.log"]
