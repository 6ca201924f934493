from __future__ import annotations

import pytest
import torch
from capture_helpers import MultiNet, batch_of, hook_count, make_handle

from featscope.capture import Capture, capture
from featscope.errors import CaptureError
from featscope.models.handle import PointRef


def manual_forward(net, x):
    """The tiny CNN's intermediates, computed by hand in eval mode."""
    f = net.features
    with torch.no_grad():
        conv0 = f[0](x)
        bn = torch.nn.functional.batch_norm(
            conv0, f[1].running_mean, f[1].running_var, f[1].weight, f[1].bias, False, 0.0, f[1].eps
        )
        feats = f[3](torch.relu(bn))
        pre = feats.mean(dim=(2, 3))
        return {"bn": bn, "features": feats, "pre_logits": pre, "logits": net.fc(pre)}


def test_alias_and_module_path_values_equal_a_manual_forward(net):
    x = batch_of(3)
    expected = manual_forward(net, x)
    handle = make_handle(net)
    with capture(handle, ["backbone", "features.1", "pre_logits", "logits"]) as tap:
        out = tap.run(x)
    assert list(out) == ["backbone", "features.1", "pre_logits", "logits"]
    torch.testing.assert_close(out["backbone"], expected["features"])
    # features.1 is followed by an in-place ReLU: the captured value is the BN output, unclipped
    torch.testing.assert_close(out["features.1"], expected["bn"])
    assert (out["features.1"] < 0).any()
    torch.testing.assert_close(out["pre_logits"], expected["pre_logits"])
    torch.testing.assert_close(out["logits"], expected["logits"])


def test_input_point_reads_the_classifier_input(net):
    x = batch_of(2)
    with capture(make_handle(net), ["pre_logits"]) as tap:
        out = tap.run(x)
    assert out["pre_logits"].shape == (2, 8)
    torch.testing.assert_close(out["pre_logits"], manual_forward(net, x)["pre_logits"])


def test_input_point_called_with_keyword_argument():
    class KwNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(input=x * 2)

    handle = make_handle(KwNet(), aliases={"pre_logits": PointRef("fc", io="input")})
    x = torch.randn(3, 4)
    with capture(handle, ["pre_logits"]) as tap:
        torch.testing.assert_close(tap.run(x)["pre_logits"], x * 2)


def test_extras_points_come_from_the_forward(net):
    def forward(module, x):
        return module(x), {"pre_logits": torch.full((len(x), 2), 7.0)}

    handle = make_handle(net, aliases={"pre_logits": PointRef(None)}, forward=forward)
    with capture(handle, ["pre_logits", "fc"]) as tap:
        out = tap.run(batch_of(2))
    torch.testing.assert_close(out["pre_logits"], torch.full((2, 2), 7.0))
    assert out["fc"].shape == (2, 5)


def test_extras_point_missing_from_forward_is_a_capture_error(net):
    handle = make_handle(net, aliases={"pre_logits": PointRef(None)})
    with (
        capture(handle, ["pre_logits"]) as tap,
        pytest.raises(CaptureError, match="returned no 'pre_logits'"),
    ):
        tap.run(batch_of(1))


def test_tuple_and_dict_outputs_and_select():
    torch.manual_seed(0)
    model = MultiNet()
    handle = make_handle(
        model,
        aliases={"neck": PointRef("neck"), "logits": PointRef("head", select="score")},
    )
    x = batch_of(2)
    with capture(handle, ["neck", "neck.1", "head", "logits"]) as tap:
        out = tap.run(x)
    stem = model.stem(x).detach()
    assert isinstance(out["neck"], tuple)
    assert len(out["neck"]) == 2
    torch.testing.assert_close(out["neck"][0], stem)
    torch.testing.assert_close(out["neck.1"], torch.nn.functional.avg_pool2d(stem, 2))
    assert set(out["head"]) == {"emb", "score", "tag"}  # None fields dropped like ModelOutput
    torch.testing.assert_close(out["logits"], out["head"]["score"])


def test_select_of_a_missing_element_is_a_capture_error():
    handle = make_handle(MultiNet(), aliases={"neck": PointRef("neck")})
    with capture(handle, ["neck.5"]) as tap, pytest.raises(CaptureError, match="has 2 elements"):
        tap.run(batch_of(1))


def test_point_that_never_runs_is_named(net):
    with (
        capture(make_handle(net), ["unused"]) as tap,
        pytest.raises(
            CaptureError,
            match=r"'unused' .* did not run during the forward pass; it may be unused by forward",
        ),
    ):
        tap.run(batch_of(1))


def test_hooks_removed_and_training_flags_restored_after_normal_exit(net):
    net.train()
    net.features[1].eval()  # a frozen BatchNorm inside a training model must stay frozen
    handle = make_handle(net)
    with capture(handle, ["backbone", "pre_logits", "features.1"]) as tap:
        assert hook_count(net) == 3
        assert not any(m.training for m in net.modules())
        tap.run(batch_of(2))
    assert hook_count(net) == 0
    assert net.training
    assert net.features[0].training
    assert not net.features[1].training
    tap.close()  # removal is safe to repeat
    assert hook_count(net) == 0
    assert net.training


def test_hooks_removed_and_training_flags_restored_after_an_exception(net):
    net.train()
    handle = make_handle(net)

    def failing_body():
        with capture(handle, ["backbone", "pre_logits"]) as tap:
            tap.run(batch_of(1))
            assert hook_count(net) == 2
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        failing_body()
    assert hook_count(net) == 0
    assert all(m.training for m in net.modules())


def test_flags_restored_when_eval_itself_raises(net, monkeypatch):
    net.train()

    def broken_eval():
        net.features.training = False
        raise RuntimeError("eval failed")

    monkeypatch.setattr(net, "eval", broken_eval)
    with pytest.raises(RuntimeError, match="eval failed"), capture(make_handle(net), ["fc"]):
        pass
    assert hook_count(net) == 0
    assert all(m.training for m in net.modules())


def test_run_outside_the_with_block_is_a_capture_error(net):
    tap = capture(make_handle(net), ["fc"])
    assert isinstance(tap, Capture)
    with pytest.raises(CaptureError, match=r"outside its `with` block"):
        tap.run(batch_of(1))
    assert hook_count(net) == 0


def test_run_uses_inference_mode_and_keeps_values_of_each_call(net):
    handle = make_handle(net)
    with capture(handle, ["backbone"]) as tap:
        first = tap.run(batch_of(2))["backbone"]
        second = tap.run(batch_of(1))["backbone"]
    assert first.is_inference()
    assert not first.requires_grad
    assert first.shape[0] == 2
    assert second.shape[0] == 1
