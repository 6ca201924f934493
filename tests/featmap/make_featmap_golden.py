"""Regenerate featmap_golden.npz from the reference libraries (not a test; run by hand).

The golden arrays are the outputs of MMEngine's ``Visualizer.draw_featmap`` (mmengine 0.10.7),
MMRazor 1.0.0's ``modify`` (its source, minus ``master_only``) and OpenCV
(opencv-python-headless 4.14) on small deterministic inputs. featscope's tests compare its
numpy reimplementation against them, so the suite needs none of those libraries.

    pip install --target /tmp/ref mmengine==0.10.7 opencv-python-headless addict yapf \
        termcolor platformdirs --no-deps
    export MMRAZOR_LOCAL_VISUALIZER=<mmrazor 1.0.0>/mmrazor/visualization/local_visualizer.py
    PYTHONPATH=/tmp/ref python tests/featmap/make_featmap_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from featmap_golden_inputs import deterministic_featmap, deterministic_image
from mmengine.visualization import Visualizer
from mmengine.visualization.utils import convert_overlay_heatmap

OUT = Path(__file__).with_name("featmap_golden.npz")


def load_modify():
    src = Path(os.environ["MMRAZOR_LOCAL_VISUALIZER"]).read_text()
    src = src.replace("from mmengine.dist import master_only\n", "").replace("@master_only\n", "")
    namespace: dict = {}
    exec(compile(src, "local_visualizer.py", "exec"), namespace)
    return namespace["modify"]


def main() -> None:
    modify = load_modify()
    out: dict[str, np.ndarray] = {}
    x = deterministic_featmap(6, 5, 7)
    t = torch.from_numpy(x)
    img = deterministic_image(9, 11)
    out["mmengine_squeeze_mean_overlay"] = Visualizer.draw_featmap(
        t, img, "squeeze_mean", 20, (4, 5), None, 0.5
    )
    out["mmengine_select_max_resize"] = Visualizer.draw_featmap(
        t, img, "select_max", 20, (4, 5), (6, 13), 0.3
    )
    out["mmengine_squeeze_mean_alone"] = Visualizer.draw_featmap(
        t, None, "squeeze_mean", 20, (4, 5), None, 0.5
    )
    padded = deterministic_featmap(4, 8, 6)  # taller than the 9x11 image: crop rows
    out["mmrazor_pixel_wise_max_crop"] = modify(
        torch.from_numpy(padded), img, "pixel_wise_max", 20, (4, 5), None, 0.7
    )
    out["mmengine_three_channels"] = Visualizer.draw_featmap(
        torch.from_numpy(deterministic_featmap(3, 5, 7)), None, None, 0, (4, 5), None, 0.5
    )
    # top-k tiles as the reference computes them before matplotlib lays them out
    s = torch.sum(t, dim=(1, 2))
    _, idx = torch.topk(s, 4)
    out["topk_indices"] = idx.numpy()
    out["topk_tiles"] = np.stack([convert_overlay_heatmap(t[i], None, 0.5) for i in idx])
    # OpenCV primitives
    out["cv2_resize_up"] = cv2.resize(img, (17, 13))
    out["cv2_resize_down"] = cv2.resize(img, (4, 3))
    heat = np.arange(256, dtype=np.uint8)[::-1].reshape(16, 16, 1) * np.ones(3, np.uint8)
    base = np.arange(256, dtype=np.uint8).reshape(16, 16, 1) * np.ones(3, np.uint8)
    for alpha in (0.3, 0.25, 0.7, 0.1):
        out[f"cv2_addweighted_{alpha}"] = cv2.addWeighted(base, 1 - alpha, heat, alpha, 0)
    ramp = np.linspace(-1.3, 2.9, 40, dtype=np.float32).reshape(5, 8)
    out["cv2_normalize_ramp"] = np.asarray(
        cv2.normalize(ramp, None, 0, 255, cv2.NORM_MINMAX), dtype=np.uint8
    )
    three = np.linspace(0, 0.7, 3, dtype=np.float32).reshape(1, 3)  # max lands on 254.99998
    out["cv2_normalize_linspace3"] = np.asarray(
        cv2.normalize(three, None, 0, 255, cv2.NORM_MINMAX), dtype=np.uint8
    )
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}: {', '.join(sorted(out))}")


if __name__ == "__main__":
    main()
