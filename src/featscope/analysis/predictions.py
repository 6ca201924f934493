"""What a classifier predicted for each sample, and where it was wrong.

The logits come from the same forward pass as the features of the maps
(:func:`featscope.capture.extract_feature_sets` captures the ``logits`` point beside the requested
ones), so a point on a map and its prediction always belong to the same image and weights.

* :func:`predict` -- logits in, predicted class and its softmax probability out;
* :func:`prediction_fields` -- the per-sample columns ``prediction``, ``confidence`` and
  ``correct`` of an :class:`~featscope.results.EmbeddingResult`, or the reason there are none;
* :func:`prediction_metrics` -- accuracy and the most confused class pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = ["NO_CLASSIFIER", "predict", "prediction_fields", "prediction_metrics"]

#: Why a map has no predictions when its features came without classifier outputs.
NO_CLASSIFIER = (
    "there is no classifier output (the model has no 'logits' point, or the features were "
    "loaded from disk)"
)
#: How many confused class pairs :func:`prediction_metrics` lists.
TOP_PAIRS = 5


def predict(logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the predicted class of each row of ``logits`` and its softmax probability.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Classifier outputs (before the softmax).

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
        int64 ``argmax`` of each row (the first on ties).
    confidence : ndarray of shape (n_samples,)
        float32 softmax probability of the predicted class.

    Raises
    ------
    ParameterError
        When ``logits`` is not 2-D with at least one column, or holds NaN or infinity.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ParameterError(
            f"`logits` must be 2-D (n_samples, n_classes); got shape {z.shape}; pass the "
            "classifier outputs, one row per sample"
        )
    if not np.all(np.isfinite(z)):
        raise ParameterError("`logits` hold NaN or infinite values; check the model's outputs")
    prediction = np.argmax(z, axis=1).astype(np.int64)
    # softmax of the winning entry, stable for large logits: 1 / sum(exp(z - max))
    shifted = z - z.max(axis=1, keepdims=True)
    confidence = 1.0 / np.exp(shifted).sum(axis=1)
    return prediction, confidence.astype(np.float32)


def prediction_fields(
    logits: Any | None, labels: Any, class_names: Sequence[str]
) -> tuple[dict[str, np.ndarray], str | None]:
    """Return the per-sample prediction columns of a map, or the reason there are none.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_outputs) or None
        Classifier outputs of the same samples, or None when there are none.
    labels : array-like of shape (n_samples,)
        Class indices (-1: unlabelled).
    class_names : sequence of str
        The classes of the data; empty for unlabelled data.

    Returns
    -------
    fields : dict of str to numpy.ndarray
        ``prediction`` (int64), ``confidence`` (float32) and, when every sample is labelled,
        ``correct`` (bool); empty when there are no predictions.
    reason : str or None
        Why ``fields`` is empty (None when it is not).
    """
    if logits is None:
        return {}, NO_CLASSIFIER
    logits = np.asarray(logits)
    labels = np.asarray(labels, dtype=np.int64)
    n_outputs = logits.shape[1] if logits.ndim == 2 else 0
    if class_names and n_outputs != len(class_names):
        # an ImageNet classifier on a 10-class folder: its classes are not the data's classes
        return {}, (
            f"the classifier has {n_outputs} outputs but the data {len(class_names)} classes, "
            "so its predictions are not classes of the data"
        )
    prediction, confidence = predict(logits)
    fields = {"prediction": prediction, "confidence": confidence}
    if len(labels) and bool(np.all(labels >= 0)):
        fields["correct"] = prediction == labels
    return fields, None


def prediction_metrics(
    prediction: Any, labels: Any, class_names: Sequence[str], top: int = TOP_PAIRS
) -> dict[str, Any]:
    """Accuracy and the most confused class pairs of predictions against labels.

    Parameters
    ----------
    prediction : array-like of shape (n_samples,)
        Predicted class indices.
    labels : array-like of shape (n_samples,)
        True class indices; samples labelled -1 are left out.
    class_names : sequence of str
        Names of the class indices (an index without a name is named by its number).
    top : int, default 5
        How many confused pairs to list.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1], or None without labelled samples), ``n_misclassified``
        (int) and ``confused_pairs``: up to ``top`` entries ``{"true", "predicted", "count"}``,
        most frequent first (ties by class index), naming the classes.
    """
    prediction = np.asarray(prediction, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if prediction.shape != labels.shape:
        raise ParameterError(
            f"`prediction` {prediction.shape} and `labels` {labels.shape} must have one entry "
            "per sample"
        )
    known = labels >= 0
    if not np.any(known):
        return {"accuracy": None, "n_misclassified": 0, "confused_pairs": []}
    truth, guess = labels[known], prediction[known]
    wrong = truth != guess
    pairs, counts = np.unique(np.stack([truth[wrong], guess[wrong]], axis=1), axis=0,
                              return_counts=True)  # fmt: skip
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], *pairs[i]))[:top]

    def name(index: int) -> str:
        return class_names[index] if 0 <= index < len(class_names) else str(index)

    return {
        "accuracy": float(np.mean(~wrong)),
        "n_misclassified": int(wrong.sum()),
        "confused_pairs": [
            {
                "true": name(int(pairs[i][0])),
                "predicted": name(int(pairs[i][1])),
                "count": int(counts[i]),
            }
            for i in order
        ],
    }
