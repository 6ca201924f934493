"""Write the example notebooks of examples/ (without outputs: CI executes them).

Run ``python scripts/make_example_notebooks.py`` after changing a cell here; the tags name the
cells whose outputs tests/notebook/test_examples.py checks.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def code(src, tag=None):
    cell = new_code_cell(src.strip("\n"))
    if tag:
        cell.metadata["tags"] = [tag]
    return cell


def md(src):
    return new_markdown_cell(src.strip("\n"))


def save(cells, path):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, path)


quick = [
    md("""
# featscope quickstart

What has a vision model learned? This notebook runs featscope on its built-in data (no download):
a small CNN trained on scikit-learn's digits, the t-SNE map of its features at three capture
points, its feature maps on three photos, and a masked-image model's reconstructions.

`Output(work_dir=None)` keeps every result in memory and writes nothing; pass
`Output(work_dir="runs")` to get a run folder (figures, data, the page, a manifest) as well.
"""),
    code("""
import featscope
from featscope import Output, Selection

nowhere = Output(work_dir=None)  # keep everything in memory: no run folder
"""),
    md("""
## The embedding map

`featscope.tsne()` with no model and no data maps the built-in digits CNN at `backbone`, `neck`
and `pre_logits`. Ten samples per class keep it fast. The run shows itself as the interactive
page (hover a point for its picture, click the legend to hide a class, lasso to select): the page
is self-contained, so it works offline.
"""),
    code(
        """
run = featscope.tsne(selection=Selection(max_num_samples=10), output=nowhere)
run
""",
        "map-page",
    ),
    md("Its text form says what it holds, the key numbers and where it was written:"),
    code("print(repr(run))", "map-repr"),
    md("""
## The data behind it

`to_dataframe()` gives every map's coordinates with ids, labels and class names (one block of rows
per capture point); `metrics_dataframe()` the quality of each map. pandas is optional:
`pip install 'featscope[pandas]'`.
"""),
    code(
        """
frame = run.to_dataframe()
frame.head()
""",
        "frame-head",
    ),
    code("frame.shape", "frame-shape"),
    code("run.metrics_dataframe()", "metrics"),
    md("One map on its own, and its page:"),
    code("""run["pre_logits"]""", "one-map"),
    md("""
## Feature maps

Where in the picture does a layer respond? The built-in CNN's `backbone` on three photos; every
picture shows at its own size.
"""),
    code(
        """
maps = featscope.feature_maps(model="demo:digits-cnn", output=nowhere)
maps
""",
        "featmap",
    ),
    code("[m.drawn.shape for m in maps]", "featmap-shapes"),
    md("""
## Reconstructions

A small masked autoencoder trained on Fashion-MNIST fills in the hidden patches: original, masked,
reconstruction, and the reconstruction with the visible patches pasted back.
"""),
    code(
        """
recon = featscope.reconstruct(output=nowhere)
recon
""",
        "recon",
    ),
    code("recon.to_dataframe()", "recon-frame"),
    code("len(recon)", "recon-len"),
]

own = [
    md("""
# featscope on your own Dataset and model

featscope takes what you already hold: any `torch.nn.Module` and any torch `Dataset` (also a
`DataLoader`, a Hugging Face dataset, arrays, a folder: see docs/data.md). Here both are made up on
the spot: a Dataset of drawn shapes and a small CNN. Nothing is downloaded and nothing is written
(`Output(work_dir=None)`).
"""),
    code("""
import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

import featscope
from featscope import Output, Preprocess


class Shapes(torch.utils.data.Dataset):
    \"\"\"Black circles, squares and triangles on white, at random sizes and places.\"\"\"

    classes = ["circle", "square", "triangle"]

    def __init__(self, n=60, size=32, seed=0):
        self.n, self.size = n, size
        self.params = np.random.default_rng(seed).uniform(0.15, 0.35, size=(n, 3))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        label, s = i % 3, self.size
        r, dx, dy = self.params[i] * s
        cx, cy = s / 2 + dx - 0.25 * s, s / 2 + dy - 0.25 * s
        image = Image.new("RGB", (s, s), "white")
        draw = ImageDraw.Draw(image)
        box = (cx - r, cy - r, cx + r, cy + r)
        if label == 0:
            draw.ellipse(box, fill="black")
        elif label == 1:
            draw.rectangle(box, fill="black")
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill="black")
        return image, label


torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
)
data = Shapes()
nowhere = Output(work_dir=None)
"""),
    md("""
## The map of your model's features

Capture points are module paths of `net.named_modules()`: here the first block (`"2"`, pooled to
a vector) and the flattened features (`"6"`). `Preprocess(input_size=32)` feeds the images at
their own size.
"""),
    code(
        """
run = featscope.tsne(model=net, data=data, points=["2", "6"],
                     preprocess=Preprocess(input_size=(32, 32)), output=nowhere)
run
""",
        "map-page",
    ),
    code(
        """
frame = run.to_dataframe()
frame.groupby(["point", "class_name"]).size()
""",
        "frame-groups",
    ),
    code("frame.shape", "frame-shape"),
    md("## Feature maps of two of your images"),
    code(
        """
two = torch.utils.data.Subset(data, [0, 1])
maps = featscope.feature_maps(two, net, ["0", "3"], output=nowhere)
maps
""",
        "featmap",
    ),
    code("[m.drawn.shape for m in maps]", "featmap-shapes"),
    md("Any result shows itself on demand too, e.g. inside a loop:"),
    code("maps.maps[0].show()", "show"),
    md("""
## What the model sees after each transform step

`browse` draws samples of your Dataset through a transform of your own (here torchvision's), one
column per step.
"""),
    code(
        """
from torchvision import transforms

augment = transforms.Compose([transforms.RandomResizedCrop(32, scale=(0.5, 1.0)),
                              transforms.RandomHorizontalFlip()])
shown = featscope.browse(data, augment, options=featscope.BrowseOptions(n=3), output=nowhere)
shown
""",
        "browse",
    ),
    code(
        "[[image.shape for column in s.images for image in column] for s in shown]", "browse-shapes"
    ),
]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

if __name__ == "__main__":
    save(quick, EXAMPLES / "quickstart.ipynb")
    save(own, EXAMPLES / "own_dataset_and_model.ipynb")
