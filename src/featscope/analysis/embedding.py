"""Embedding maps of feature vectors: one entry point for t-SNE, UMAP and PCA.

Three layers, each built from the one below:

* :func:`embed` -- a :class:`~featscope.results.FeatureSet` in, an
  :class:`~featscope.results.EmbeddingResult` (map + parameters + quality metrics) out;
* :func:`reduce` -- a numpy array in, ``(coords, effective_params)`` out, for any method;
* the reducers: :class:`~featscope.analysis.tsne.TSNE` (a scikit-learn style estimator built
  on openTSNE), :func:`~featscope.analysis.umap.umap_map` (umap-learn) and
  :func:`~featscope.analysis.pca.pca_map` (scikit-learn), each with its parameter table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from featscope.analysis import pca, tsne_params, umap
from featscope.analysis.align import align_maps
from featscope.analysis.neighbors import N_NEIGHBORS
from featscope.analysis.params import N_COMPONENTS, check_known, check_parameters
from featscope.analysis.tsne import TSNE
from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions
from featscope.results import EmbeddingResult, FeatureSet

__all__ = ["METHODS", "embed", "map_feature_sets", "reduce"]

logger = logging.getLogger(__name__)

#: Each method's parameter table (:mod:`.params`); ``n_components`` and ``random_state`` are
#: :func:`reduce`'s own arguments.
METHODS = {
    "tsne": tsne_params.PARAMETERS,
    "umap": umap.PARAMETERS,
    "pca": pca.PARAMETERS,
}
_OWN = ("n_components", "random_state")


def reduce(
    X: Any,
    method: str = "tsne",
    n_components: int = 2,
    random_state: int | None = 0,
    **params: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Map feature vectors to 2 or 3 dimensions with t-SNE, UMAP or PCA.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors, one row per sample.
    method : {"tsne", "umap", "pca"}, default "tsne"
        The reducer: :class:`~featscope.analysis.tsne.TSNE`, ``umap.UMAP`` (extra ``umap``)
        or :class:`sklearn.decomposition.PCA`.
    n_components : int, default 2
        Map dimension (2 or 3).
    random_state : int or None, default 0
        Seed of every random choice.
    **params
        Method parameters (the tables in :data:`METHODS`). tsne: those of
        :class:`~featscope.analysis.tsne.TSNE`. umap: ``n_neighbors`` (15, lowered to
        ``n_samples - 1`` on tiny inputs), ``min_dist`` (0.1), ``metric``, ``spread``,
        ``n_epochs``, ``init``. pca: ``whiten``, ``svd_solver``.

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components)
        The map (float64).
    params : dict
        The parameters the reducer actually used ("auto" values resolved).

    Raises
    ------
    ParameterError
        Unknown method, a parameter unknown to the method, or a bad value.
    MissingExtraError
        ``method="umap"`` without umap-learn installed.
    """
    coords, used, _ = _reduce(X, method, n_components, random_state, params)
    return coords, used


def _reduce(
    X: Any, method: str, n_components: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """:func:`reduce`, plus the t-SNE's exact neighbour graph of ``X`` as given (or None).

    The graph is handed on only when the t-SNE searched ``X`` itself (Euclidean, no PCA
    first): then it is exactly what the feature k-NN accuracy would search for again.
    """
    if method not in METHODS:
        raise ParameterError(
            f"unknown embedding method {method!r}; choose one of: {', '.join(METHODS)}"
        )
    check_parameters((N_COMPONENTS,), {"n_components": n_components})
    table = METHODS[method]
    check_known(method, params, [p.name for p in table if p.name not in _OWN])
    if method == "tsne":
        tsne = TSNE(n_components=n_components, random_state=random_state, **params).fit(X)
        same_space = tsne.params_["pca_dims"] is None and tsne.params_["metric"] == "euclidean"
        return tsne.embedding_, dict(tsne.params_), tsne.neighbors_ if same_space else None
    used = {**{p.name: p.default for p in table}, **params}
    if method == "umap":
        return (*umap.umap_map(X, n_components, random_state, used), None)
    return (*pca.pca_map(X, n_components, random_state, used), None)


def embed(
    features: FeatureSet,
    method: str = "tsne",
    *,
    n_components: int = 2,
    random_state: int | None = None,
    k: int = 10,
    **params: Any,
) -> EmbeddingResult:
    """Make a map of a feature set and measure how well it keeps the classes apart.

    Parameters
    ----------
    features : FeatureSet
        Feature vectors with labels, ids and provenance.
    method : {"tsne", "umap", "pca"}, default "tsne"
        The reducer (see :func:`reduce`).
    n_components : int, default 2
        Map dimension (2 or 3).
    random_state : int or None, default None
        Seed; ``None`` uses the seed recorded in ``features.provenance``.
    k : int, default 10
        Neighbourhood size of the quality metrics (see
        :func:`featscope.analysis.embedding_metrics`).
    **params
        Parameters of the method (see :func:`reduce`).

    Returns
    -------
    EmbeddingResult
        Coordinates, effective parameters, metrics and the feature set's labels, ids and
        provenance.

    Raises
    ------
    ParameterError
        Bad method, parameter or features (see :func:`reduce`).
    MissingExtraError
        ``method="umap"`` without umap-learn installed.
    """
    from featscope.analysis.metrics import embedding_metrics

    if not isinstance(features, FeatureSet):
        raise ParameterError(
            f"`features` must be a featscope.results.FeatureSet; got {type(features).__name__}; "
            "use reduce() for plain arrays"
        )
    seed = features.provenance.seed if random_state is None else random_state
    coords, used, graph = _reduce(features.features, method, n_components, seed, params)
    n = len(coords)
    # The t-SNE's exact neighbour graph of these very features (Euclidean, no PCA first) is
    # what the page's neighbours and the feature k-NN accuracy would search for again.
    wanted = min(max(k, N_NEIGHBORS), n - 1)
    usable = graph is not None and graph.shape[1] >= wanted
    fields, neighbors, more = sample_fields(
        features, random_state=seed, neighbors=graph if usable else None
    )
    feature_graph = graph if usable else neighbors
    metrics = embedding_metrics(
        features.features,
        coords,
        features.labels,
        k=k,
        random_state=seed,
        feature_neighbors=feature_graph if feature_graph.shape[1] >= min(k, n - 1) else None,
    )
    skipped = {**metrics.get("skipped", {}), **more.pop("skipped", {})}
    metrics.update(more, **({"skipped": skipped} if skipped else {}))
    return EmbeddingResult(
        coords=coords,
        labels=features.labels,
        class_names=features.class_names,
        ids=features.ids,
        point=features.point,
        method=method,
        params=used,
        metrics=metrics,
        pooling=features.pooling,
        provenance=features.provenance,
        fields=fields,
        neighbors=neighbors,
    )


def sample_fields(
    features: FeatureSet, *, random_state: int | None = 0, neighbors: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Per-sample columns of a map beyond its coordinates, and the metrics they give.

    Parameters
    ----------
    features : FeatureSet
        Features with labels, metadata ``fields`` and, for a classifier, ``logits``.
    random_state : int or None, default 0
        Seed of the clustering.
    neighbors : numpy.ndarray, optional
        Each sample's exact nearest other samples in ``features.features`` (Euclidean),
        nearest first, at least :data:`~featscope.analysis.neighbors.N_NEIGHBORS` columns
        (fewer for tiny sets): the t-SNE's own graph, used instead of a second search.

    Returns
    -------
    fields : dict of str to numpy.ndarray
        The metadata columns, ``prediction``/``confidence``/``correct`` when there are
        predictions (:func:`~featscope.analysis.predictions.prediction_fields`) and
        ``cluster`` (:func:`~featscope.analysis.clusters.cluster_features`).
    neighbors : numpy.ndarray
        ``(N, k)`` feature-space neighbours
        (:func:`~featscope.analysis.neighbors.feature_neighbors`).
    metrics : dict
        ``accuracy``, ``n_misclassified`` and ``confused_pairs`` with predictions and labels
        (else ``skipped["accuracy"]`` says why), ``n_clusters`` and ``cluster_purity``.
    """
    from featscope.analysis.clusters import cluster_features, cluster_purity
    from featscope.analysis.neighbors import feature_neighbors
    from featscope.analysis.predictions import prediction_fields, prediction_metrics

    labels, names = features.labels, features.class_names
    fields = dict(features.fields)
    predicted, reason = prediction_fields(features.logits, labels, names)
    fields.update(predicted)
    metrics: dict[str, Any] = {}
    if "correct" in predicted:
        metrics.update(prediction_metrics(predicted["prediction"], labels, names))
    elif reason is not None:
        metrics["skipped"] = {"accuracy": reason}
    clusters = cluster_features(features.features, labels, random_state=random_state)
    fields["cluster"] = clusters
    metrics["n_clusters"] = len(np.unique(clusters[clusters >= 0]))
    metrics["cluster_purity"] = cluster_purity(clusters, labels)
    if neighbors is None:
        neighbors = feature_neighbors(features.features)
    else:
        neighbors = np.ascontiguousarray(neighbors[:, :N_NEIGHBORS], dtype=np.int32)
    return fields, neighbors, metrics


def map_feature_sets(
    feature_sets: Iterable[FeatureSet],
    options: EmbeddingOptions | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    previous: Sequence[EmbeddingResult] | None = None,
) -> tuple[EmbeddingResult, ...]:
    """Map every feature set with the same method and parameters, as every embedding view does.

    Parameters
    ----------
    feature_sets : iterable of FeatureSet
        Features at one or more capture points (usually of the same samples).
    options : EmbeddingOptions, optional
        The method and its parameters (default: ``EmbeddingOptions()``, a 2-D t-SNE).
    seed : int, default 0
        Seed of every map.
    device : str, default "cpu"
        Where the features were extracted. A t-SNE follows them onto a CUDA device
        (featscope's torch engine); on any other device (MPS has no float64) it runs on the
        CPU. UMAP and PCA always run on the CPU.
    previous : sequence of EmbeddingResult, optional
        The maps of the same points made before (Monitor: the previous epoch): with
        ``options.align="procrustes"`` each map is turned onto its earlier map instead of onto
        the map before it in this call.

    Returns
    -------
    tuple of EmbeddingResult
        One map per feature set, in order, with its metrics; unless ``options.align="none"``,
        each turned (rotation/reflection, :func:`featscope.analysis.align.align_maps`) onto the
        map before it, so that a cluster stays where it was.

    Raises
    ------
    ParameterError, MissingExtraError
        As :func:`embed`.
    """
    options = EmbeddingOptions() if options is None else options
    params = options.reducer_params()
    if options.method == "tsne":
        params.setdefault("device", device if str(device).startswith("cuda") else "cpu")
    results = []
    for fs in feature_sets:
        result = embed(fs, method=options.method, random_state=seed, **params)
        logger.info(
            "%s: %s map of %d samples; metrics %s",
            fs.point,
            options.method,
            len(fs),
            dict(result.metrics),
        )
        results.append(result)
    if previous is not None and len(previous) != len(results):
        previous = None  # other points than last time: chain the maps of this call instead
    return align_maps(results, options.align, previous=previous, previous_label="previous epoch")
