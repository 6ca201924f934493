from __future__ import annotations

import pytest
from capture_helpers import make_handle, make_samples

from featscope.capture import CapturePoint, extract_features, resolve_points
from featscope.errors import CaptureError, ParameterError
from featscope.models.handle import PointRef


def test_aliases_and_module_paths_resolve(net):
    handle = make_handle(net)
    points = resolve_points(handle, ["backbone", "features.1", "pre_logits", "", "logits"])
    assert points == [
        CapturePoint("backbone", PointRef("features"), alias="backbone"),
        CapturePoint("features.1", PointRef("features.1")),
        CapturePoint("pre_logits", PointRef("fc", io="input"), alias="pre_logits"),
        CapturePoint("", PointRef("")),
        CapturePoint("logits", PointRef(""), alias="logits"),
    ]


def test_single_name_and_duplicates_keep_order(net):
    handle = make_handle(net)
    assert [p.name for p in resolve_points(handle, "fc")] == ["fc"]
    names = [p.name for p in resolve_points(handle, ["fc", "backbone", "fc", "backbone", "pool"])]
    assert names == ["fc", "backbone", "pool"]


def test_unknown_point_lists_nearest_names_and_aliases(net):
    handle = make_handle(net)
    with pytest.raises(CaptureError, match=r"'featurez' is not in this model \(test:tiny\)") as exc:
        resolve_points(handle, ["backbone", "featurez"])
    message = str(exc.value)
    nearest = message.split("nearest: ")[1].split(";")[0].split(", ")
    assert nearest[0] == "features"
    assert len(nearest) <= 5
    assert "aliases this model has: backbone, pre_logits, logits" in message
    assert "featscope points --model test:tiny" in message
    assert "\n" not in message


def test_alias_the_family_lacks_names_the_available_aliases(net):
    handle = make_handle(net)
    with pytest.raises(
        CaptureError,
        match=r"'neck' is an alias this model .* does not provide; "
        r"aliases this model has: backbone, pre_logits, logits",
    ):
        resolve_points(handle, ["neck"])


def test_missing_alias_points_to_a_nested_module_of_that_name():
    from torch import nn

    from featscope.models import load_model

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.architecture = nn.Module()
            self.architecture.backbone = nn.Conv2d(3, 4, 3)
            self.architecture.neck = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.architecture.neck(self.architecture.backbone(x)).flatten(1)

    handle = load_model(Wrapped())
    with pytest.raises(CaptureError, match=r"modules named like it: architecture\.neck"):
        resolve_points(handle, ["neck"])


def test_alias_element_name_selects_from_the_alias(net):
    handle = make_handle(net, aliases={"neck": PointRef("features")})
    (point,) = resolve_points(handle, ["neck.1"])
    assert point == CapturePoint("neck.1", PointRef("features", select=1), alias="neck")


@pytest.mark.parametrize(
    ("names", "match"),
    [([], "`points` is empty; pass at least one"), ([3], r"must be strings; got 3 \(int\)")],
)
def test_empty_or_non_string_names_are_parameter_errors(net, names, match):
    with pytest.raises(ParameterError, match=match):
        resolve_points(make_handle(net), names)


def test_unknown_point_fails_before_any_image_is_read(net):
    calls = []

    def loader(i):
        calls.append(i)
        raise AssertionError("no image may be read")

    with pytest.raises(CaptureError, match="'layer5' is not in this model"):
        extract_features(make_handle(net), make_samples(4, loader=loader), ["layer5"])
    assert calls == []
