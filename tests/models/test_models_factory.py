from __future__ import annotations

import textwrap
import uuid

import pytest
from torch import nn

from featscope.errors import ModelSpecError
from featscope.models import ModelHandle, PointRef, Preprocessing, load_model

FACTORY_SOURCE = """
from torch import nn
from featscope.models import ModelHandle, PointRef, Preprocessing


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def build():
    return Net()


def build_handle():
    return ModelHandle(
        module=Net(),
        spec="custom",
        family="factory",
        preprocess=Preprocessing(input_size=(64, 64)),
        aliases={"logits": PointRef("")},
    )


class Builders:
    @staticmethod
    def make():
        return Net()


def needs_args(depth):
    return Net()


def not_a_model():
    return 42


NOT_CALLABLE = 3
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch) -> str:
    # a fresh module name per test: sys.modules caches imports across tests
    name = f"fs_factory_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORY_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_py_factory_module_wrapped_with_generic_aliases(factory_module: str) -> None:
    handle = load_model(f"py:{factory_module}:build")
    assert handle.family == "factory"
    assert handle.spec == f"py:{factory_module}:build"
    assert type(handle.module).__name__ == "Net"
    assert handle.aliases == {
        "backbone": PointRef("features"),
        "neck": PointRef("avgpool"),
        "pre_logits": PointRef("classifier.1", io="input"),
        "logits": PointRef(""),
    }
    assert handle.preprocess == Preprocessing()


def test_py_factory_returning_handle_is_used_as_is(factory_module: str) -> None:
    handle = load_model(f"py:{factory_module}:build_handle")
    assert handle.spec == "custom"
    assert handle.preprocess.input_size == (64, 64)
    assert handle.aliases == {"logits": PointRef("")}


def test_py_dotted_attribute(factory_module: str) -> None:
    handle = load_model(f"py:{factory_module}:Builders.make")
    assert type(handle.module).__name__ == "Net"


def test_py_module_not_importable() -> None:
    with pytest.raises(ModelSpecError, match=r"cannot import module 'no_such_pkg_x\.nets'"):
        load_model("py:no_such_pkg_x.nets:build")


def test_py_attribute_missing_suggests_close(factory_module: str) -> None:
    with pytest.raises(ModelSpecError, match=r"no attribute 'buld'; did you mean build"):
        load_model(f"py:{factory_module}:buld")


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("not_a_model", "returned a int; it must return a torch.nn.Module or a featscope"),
        ("needs_args", r"needs argument\(s\) depth"),
        ("NOT_CALLABLE", "not a callable"),
    ],
)
def test_py_factory_wrong_results(factory_module: str, attribute: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        load_model(f"py:{factory_module}:{attribute}")


def test_module_and_callable_passed_directly() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Linear(5, 2))
    handle = load_model(net)
    assert handle.module is net
    assert handle.spec == "torch.nn.modules.container.Sequential"
    assert handle.aliases["pre_logits"] == PointRef("2", io="input")

    def build() -> nn.Module:
        return nn.Linear(3, 3)

    from_callable = load_model(build)
    assert isinstance(from_callable.module, nn.Linear)
    assert from_callable.spec.startswith("py:")
    assert from_callable.spec.endswith("build")


def test_handle_passed_directly_is_returned() -> None:
    handle = ModelHandle(module=nn.Linear(2, 2), spec="mine", family="factory")
    assert load_model(handle) is handle


def test_wrong_model_type() -> None:
    with pytest.raises(ModelSpecError, match="got int"):
        load_model(5)
