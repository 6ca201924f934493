"""py: data specs, and the one py: importer (current folder, file paths) for models and data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from featscope.data import load_samples, py_data
from featscope.errors import DataError, ModelSpecError
from featscope.models import load_model
from featscope.models.spec import parse_spec

DATA_SOURCE = """
import numpy as np
import torch
from torch.utils.data import TensorDataset


class Digits(torch.utils.data.Dataset):
    classes = ["zero", "one"]

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.full((4, 4), 60 * i, dtype=np.uint8), i % 2


def make():
    return Digits()


def make_tensors():
    return TensorDataset(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]))


def make_folder():
    return FOLDER


def needs(root):
    return Digits()


def broken():
    raise FileNotFoundError("no such file: ./cifar-10-batches-py")


def nothing():
    return None


def not_data():
    return 42


DATASET = Digits()
FOLDER = None
"""

MODEL_SOURCE = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


def _module(folder: Path, source: str) -> str:
    name = f"fs_data_{uuid.uuid4().hex[:8]}"  # sys.modules caches imports across tests
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


@pytest.fixture
def data_module(tmp_path, monkeypatch) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    return _module(tmp_path, DATA_SOURCE)


def test_py_factory_returns_a_dataset(data_module):
    samples = load_samples(f"py:{data_module}:make")
    assert samples.source == f"py:{data_module}:make (torch Dataset Digits)"
    assert samples.class_names == ("zero", "one")
    np.testing.assert_array_equal(samples.labels, [0, 1, 0])
    assert samples.load(2).getpixel((0, 0)) == (120, 120, 120)
    assert load_samples(f"py:{data_module}:make_tensors").prepared
    # a module-level dataset object is used as it is
    assert len(py_data(f"py:{data_module}:DATASET")) == 3


def test_py_factory_returning_a_folder(data_module, tmp_path):
    import importlib

    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "imgs" / "a.png")
    importlib.import_module(data_module).FOLDER = str(tmp_path / "imgs")
    samples = load_samples(f"py:{data_module}:make_folder")
    assert samples.ids == ("a.png",)
    assert not samples.labelled


@pytest.mark.parametrize(
    ("attribute", "match"),
    [
        (
            "broken",
            r"data factory 'py:\w+:broken' raised FileNotFoundError: no such file: "
            r"\./cifar-10-batches-py; fix the factory",
        ),
        ("needs", r"data factory 'py:\w+:needs' needs argument\(s\) root; name a function"),
        ("nothing", r"data factory 'py:\w+:nothing' returned None; return the data"),
        ("not_data", r"data factory 'py:\w+:not_data': data must be a folder .*; got int"),
        ("mkae", r"data spec 'py:\w+:mkae': '\w+' has no attribute 'mkae'; did you mean make"),
    ],
)
def test_py_factory_errors_name_the_factory(data_module, attribute, match):
    with pytest.raises(DataError, match=match) as info:
        load_samples(f"py:{data_module}:{attribute}")
    assert "\n" not in str(info.value)


def test_py_spec_errors():
    with pytest.raises(DataError, match=r"data spec 'py:nowhere_xyz:make': cannot import module"):
        load_samples("py:nowhere_xyz:make")
    with pytest.raises(DataError, match=r"data spec 'py:just_a_module': a py: spec must be"):
        load_samples("py:just_a_module")


def test_py_file_path_for_data_and_models(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helpers.py").write_text("SIZE = 4\n")
    data_file = folder / f"{_module(folder, DATA_SOURCE)}.py"
    # the file's own sibling imports work, as under `python project/file.py`
    with data_file.open("a") as f:
        f.write("\nfrom helpers import SIZE\n")
    samples = load_samples(f"py:{data_file}:make")
    assert len(samples) == 3
    assert samples.source.startswith(f"py:{data_file}:make")
    model_file = folder / "my_nets.py"
    model_file.write_text(textwrap.dedent(MODEL_SOURCE))
    handle = load_model(f"py:{model_file}:build")
    assert handle.family == "factory"
    assert handle.spec == f"py:{model_file}:build"
    assert parse_spec(f"py:{model_file}:build").factory_path() == (str(model_file), "build")
    with pytest.raises(ModelSpecError, match=r"cannot import file '.*absent\.py' \(no such file"):
        load_model(f"py:{folder / 'absent.py'}:build")


def test_py_file_that_fails_to_import_is_one_line(tmp_path):
    bad = tmp_path / "bad_mod.py"
    bad.write_text("raise RuntimeError('needs a GPU')\n")
    with pytest.raises(DataError, match=r"importing '.*bad_mod\.py' raised RuntimeError: needs a"):
        load_samples(f"py:{bad}:make")


def test_modules_in_the_current_folder_are_found(tmp_path, monkeypatch):
    # the console script's sys.path lacks the current folder; python -m has it
    monkeypatch.chdir(tmp_path)
    here = {"", ".", str(tmp_path)}
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in here])
    name = _module(tmp_path, DATA_SOURCE)
    assert len(load_samples(f"py:{name}:make")) == 3
    assert sys.path[-1] == os.getcwd()  # kept, last: the module's later imports still work


def test_console_script_finds_a_py_module_in_the_current_folder(tmp_path):
    model = _module(tmp_path, MODEL_SOURCE)
    data = _module(tmp_path, DATA_SOURCE)
    # `featscope` (a console script) starts with its own folder, not the current one, on sys.path
    code = (
        "import sys; sys.path.pop(0); "
        "from featscope.models import load_model; from featscope.data import load_samples; "
        f"print(load_model('py:{model}:build').family, len(load_samples('py:{data}:make')))"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["factory", "3"]
