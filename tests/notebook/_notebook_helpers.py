"""Small hand-built results of every type, and readers of what their displays hold."""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
from PIL import Image

from featscope.results import (
    BrowsedSample,
    BrowseResult,
    CamMap,
    CamRun,
    CapturedMaps,
    CompareRun,
    EmbeddingResult,
    FeatmapRun,
    FeatureMap,
    FeatureSet,
    MonitorStep,
    Provenance,
    ReconstructedImage,
    ReconstructionResult,
    ReconstructionRun,
    ShapeBiasRun,
    ShapeBiasStats,
    TsneRun,
)

#: A class name that would run in the notebook if any display forgot to escape it.
EVIL = "<script>alert('x')</script>"
PROV = Provenance(model="timm:resnet18", source="val/", seed=0)


def embedding(point="pre_logits", n=30, classes=("cat", "dog", EVIL), fields=True):
    rng = np.random.default_rng(len(point))
    labels = np.arange(n) % len(classes)
    extra = {}
    if fields:
        extra = {
            "prediction": labels[::-1].copy(),
            "confidence": rng.random(n).astype(np.float32),
            "site": np.array([f"site{i % 4}" for i in range(n)]),
        }
    return EmbeddingResult(
        coords=rng.normal(size=(n, 2)),
        labels=labels,
        class_names=classes,
        ids=tuple(f"img_{i}.png" for i in range(n)),
        point=point,
        method="tsne",
        params={"perplexity": 5.0},
        metrics={"knn_accuracy_map": 0.875, "trustworthiness": 0.93125, "n_samples": n},
        provenance=PROV,
        fields=extra,
    )


def feature_set(point="pre_logits", n=30):
    return FeatureSet(
        features=np.ones((n, 512), np.float32),
        labels=np.arange(n) % 3,
        class_names=("cat", "dog", EVIL),
        ids=tuple(f"img_{i}.png" for i in range(n)),
        point=point,
        pooling="global_avg",
        provenance=PROV,
    )


def tsne_run(points=("layer3", "pre_logits"), n=30):
    thumbs = np.full((n, 8, 8, 3), 200, np.uint8)
    return TsneRun(
        results=tuple(embedding(p, n) for p in points),
        features=tuple(feature_set(p, n) for p in points),
        run_dir=None,
        timings={"extract": 1.25, "reduce": 0.5},
        thumbnails=thumbs,
        thumbnail_rows=np.arange(n),
    )


def feature_map(image="a.png", name="layer3", size=(40, 60)):
    drawn = np.zeros((*size, 3), np.uint8)
    drawn[:, : size[1] // 2] = 255
    return FeatureMap(
        image_id=image,
        point=name.split(".")[0],
        name=name,
        values=np.ones((256, 14, 14), np.float32),
        drawn=drawn,
        file=f"{image}_{name}",
        provenance=PROV,
    )


def recon_image(image="b.png", size=32):
    rgb = np.full((size, size, 3), 128, np.uint8)
    return ReconstructedImage(
        image_id=image,
        original=rgb,
        mask=np.zeros((size, size), bool),
        patch_mask=np.eye(4, dtype=bool),
        masked=rgb,
        reconstruction=rgb,
        pasted=rgb,
        error=0.0125,
    )


def recon_result(n=3):
    images = tuple(recon_image(f"img{i}.png") for i in range(n))
    return ReconstructionResult(images, "mae", {"mask_ratio": 0.75, "error": "mse_pixels_0_1"})


def shape_stats(name="resnet50"):
    per = {
        "bear": {"n_shape": 3, "n_texture": 9, "n_other": 1},
        "cat": {"n_shape": 5, "n_texture": 5, "n_other": 0},
    }
    return ShapeBiasStats.from_counts(name, per)


def shape_run():
    stats = {"humans": shape_stats("humans"), "resnet50": shape_stats("resnet50")}
    return ShapeBiasRun(stats=stats, model_name="resnet50", shown=("humans", "resnet50"))


def browsed(index=0, sizes=((30, 40), (24, 24))):
    images = tuple((np.zeros((*s, 3), np.uint8),) for s in sizes)
    return BrowsedSample(
        index=index,
        id=f"cat/{index}.png",
        label=0,
        class_name=EVIL,
        columns=("Original", "Resize(24)"),
        sizes=sizes,
        images=images,
        file=f"sample_{index}",
    )


def browse_result(n=2):
    return BrowseResult(
        samples=tuple(browsed(i) for i in range(n)),
        mode="pipeline",
        transform="timm:resnet18 (eval)",
        steps=("Resize(24)",),
        source="val/",
    )


def cam_map(image="c.png", size=(30, 20), score=0.25):
    return CamMap(
        image_id=image,
        method="gradcam",
        class_index=3,
        class_name=EVIL,
        probability=0.5,
        values=np.zeros((7, 7), np.float32),
        drawn=np.full((*size, 3), 90, np.uint8),
        score=score,
        metric="road",
        point="layer4",
        provenance=PROV,
    )


def every_result():
    """Return ``{name: result}`` of every result type, small."""
    fmaps = (feature_map("a.png", "layer3"), feature_map("b.png", "layer4", (20, 30)))
    recon = recon_result()
    return {
        "FeatureSet": feature_set(),
        "EmbeddingResult": embedding(),
        "TsneRun": tsne_run(),
        "CapturedMaps": CapturedMaps(
            "a.png", {"layer3": {"layer3": np.zeros((8, 4, 4))}}, (0, 0, 4, 4)
        ),
        "FeatureMap": fmaps[0],
        "FeatmapRun": FeatmapRun(fmaps, None, models=("timm:resnet18",), timings={"draw": 0.1}),
        "ReconstructedImage": recon.images[0],
        "ReconstructionResult": recon,
        "ReconstructionRun": ReconstructionRun(recon, None, timings={"predict": 0.2}),
        "ShapeBiasStats": shape_stats(),
        "ShapeBiasRun": shape_run(),
        "BrowsedSample": browsed(),
        "BrowseResult": browse_result(),
        "CompareRun": CompareRun(
            results=(embedding("a"), embedding("b")),
            titles=("run1 · a", "run2 · b"),
            page=None,
            run_dir=None,
        ),
        "MonitorStep": MonitorStep(epoch=3, results=(embedding("pre_logits"),)),
        "CamMap": cam_map(),
        "CamRun": CamRun(
            (cam_map(), cam_map("d.png", (16, 24), None)), None, "timm:resnet18", "layer4"
        ),
    }


def decode_png(data: str) -> np.ndarray:
    """Return the pixels of base64 PNG text."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def html_images(text: str) -> list[np.ndarray]:
    """Return the pixels of every inline PNG ``<img>`` of an HTML fragment."""
    return [decode_png(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def iframe_page(text: str) -> str:
    """Return the document held in the ``srcdoc`` of the one iframe of ``text``, unescaped."""
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)"[^>]*></iframe>', text)
    assert match is not None, text[:200]
    return html.unescape(match.group(1))
