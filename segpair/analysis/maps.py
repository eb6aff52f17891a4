"""Maps of the embedding space: a partition's proteins in two dimensions.

Input: `protein_final` (the metadata) and one embedder's master cache (`EmbeddingStore`).
Identical sequences share a cache row, so each distinct vector is placed once and its
proteins share its coordinates (duplicates would also crowd each other's neighbours).

Methods: PCA always (the first two components of the centred vectors); then a
non-linear map on the first `pca_dims` components: UMAP where umap-learn is installed,
t-SNE (scikit-learn) otherwise. UMAP is given an exact neighbour graph computed by
scikit-learn, because below 4,096 points umap-learn computes all pairwise distances one
Python call at a time (55 s for 3,200 points). Above `max_fit_points` distinct vectors,
PCA and the non-linear map are fitted on a seeded sample of that many: PCA then projects
every vector (read from the cache in batches, so memory stays bounded) and the others
have no non-linear coordinates (NaN), which the `views` table says.

Views: "all" (every protein) and the focus function's proteins alone (by default the
function with the most distinct sequences, e.g. HA), re-projected on their own so the
lineages inside one protein spread out.

Output of `write_map` (files, atomically): `map_coordinates.parquet` with one row per
protein and view: `view`, `brc_fea_id`, `assembly_id`, `isolate_name`, `segment`,
`function`, `subtype`, `host`, `year`, `seq_hash`, then `{method}_x`, `{method}_y` per
method (`pca_x`, `pca_y`, `umap_x`, `umap_y`); one PNG per colour column
(`map_by_function.png`, ...) and `map_{function}_by_{column}.png`;
`map_separation.csv` (how well the map keeps functions apart).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from segpair.analysis.plots import map_png
from segpair.atomic import atomic_path
from segpair.cleaning import PROTEIN_DESCRIPTION_COLUMNS
from segpair.embeddings.cache import EmbeddingStore

NonlinearMethod = Literal["auto", "umap", "tsne", "none"]
# Colour columns of the map of all proteins; the focus function's map takes the first of
# FOCUS_COLOURS with values (the simulator's lineages and real subtypes are in `subtype`,
# SFTSV genotypes too; a set without any is coloured by host, then year).
COLOUR_COLUMNS = ("function", "subtype", "host")
FOCUS_COLOURS = ("subtype", "host", "year")
METADATA_COLUMNS = list(PROTEIN_DESCRIPTION_COLUMNS)
MIN_POINTS = 3  # a map of fewer distinct sequences says nothing
MIN_NONLINEAR_POINTS = 10  # a neighbour graph needs a few neighbours per point
PURITY_NEIGHBOURS = 10
PROJECTION_BATCH = 10_000  # vectors read from the cache at a time beyond the sample


class NothingToMap(ValueError):
    """The partition has too few proteins with a vector in this cache to draw a map."""


@dataclass
class MapConfig:
    nonlinear: NonlinearMethod = "auto"  # auto: UMAP where installed, else t-SNE
    max_fit_points: int = 20_000  # above: PCA and UMAP fitted on a seeded sample
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    umap_epochs: int = 200
    pca_dims: int = 50  # components the non-linear map starts from
    focus_function: str | None = None  # None: the function with most distinct sequences
    max_legend_entries: int = 12
    seed: int = 0


@dataclass
class EmbeddingMap:
    coordinates: pd.DataFrame  # one row per protein and view (module docstring)
    methods: list[str]  # "pca", then "umap" or "tsne" when it ran
    # per view: proteins, points (distinct vectors), pc1_variance, pc2_variance (shares of
    # the variance), nonlinear (what the non-linear map did, or why it did not run)
    views: pd.DataFrame
    separation: pd.DataFrame  # view, coloured_by, method, points, nn_purity, silhouette
    focus_function: str
    focus_colour: str | None  # None: no column to colour the focus map by, so none drawn
    colour_columns: list[str]
    missing_columns: dict[str, str] = field(default_factory=dict)  # column -> why not drawn
    proteins_without_vector: int = 0


def resolve_nonlinear(method: NonlinearMethod) -> str | None:
    """The non-linear method that will run: "auto" is UMAP when umap-learn imports, else
    t-SNE; "umap" without umap-learn is an error naming the fix."""
    have_umap = importlib.util.find_spec("umap") is not None
    if method == "none":
        return None
    if method == "umap" and not have_umap:
        raise ImportError(
            "nonlinear='umap' needs umap-learn: pip install umap-learn, or "
            "set nonlinear to 'tsne' or 'auto'"
        )
    if method == "auto":
        return "umap" if have_umap else "tsne"
    return method


def _fit_sample(n: int, config: MapConfig) -> np.ndarray:
    """Positions the maps are fitted on: all, or a seeded sample of `max_fit_points`."""
    if n <= config.max_fit_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(config.seed).choice(n, config.max_fit_points, False))


def _pca(vectors, fitted: np.ndarray, config: MapConfig) -> tuple[np.ndarray, tuple[float, float]]:
    """The first min(pca_dims, n, d) principal components of every vector, fitted on the
    `fitted` ones (then the rest projected in batches), and the variance share of PC1, PC2."""
    x = vectors[fitted]
    pca = PCA(n_components=max(2, min(config.pca_dims, *x.shape)), random_state=config.seed)
    if len(fitted) == len(vectors):
        z = pca.fit_transform(x)
    else:  # fitted on the sample, every vector (the sample too) projected in batches
        pca.fit(x)
        del x
        batches = range(0, len(vectors), PROJECTION_BATCH)
        z = np.vstack([pca.transform(vectors[np.arange(i, min(i + PROJECTION_BATCH, len(vectors)))])
                       for i in batches])  # fmt: skip
    ratio = pca.explained_variance_ratio_
    return z.astype(np.float32), (float(ratio[0]), float(ratio[1]) if len(ratio) > 1 else 0.0)


def _umap(z: np.ndarray, config: MapConfig) -> np.ndarray:
    import umap

    k = min(config.umap_neighbors, len(z) - 1)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(z)  # self first
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=config.umap_min_dist,
        n_epochs=config.umap_epochs,
        random_state=config.seed,
        n_jobs=1,
        precomputed_knn=(idx, dist.astype(np.float32)),
    )
    with warnings.catch_warnings():
        # seeded runs are single-threaded anyway; no transform of new points is needed
        warnings.filterwarnings("ignore", message=".*(n_jobs|knn_search_index).*")
        return reducer.fit_transform(z)


def _tsne(z: np.ndarray, config: MapConfig) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (len(z) - 1) / 3)
    return TSNE(perplexity=perplexity, init="pca", random_state=config.seed).fit_transform(z)


def place(
    vectors, config: MapConfig, method: str | None
) -> tuple[dict[str, np.ndarray], tuple[float, float], str]:
    """2-D coordinates per method of each of `vectors` (an array, or anything with len()
    that returns the rows at an array of positions), PC1/PC2 variance shares, and a note
    saying what the non-linear map did (or why not).

    One BLAS/OpenMP thread: beside other steps on 2 cores, threads waiting for each other
    cost 6x the CPU (PCA of the demo's 2,055 x 8,000 3-mer vectors: 0.5 s on one thread,
    3.5 s on two)."""
    with threadpool_limits(limits=1):
        return _place(vectors, config, method)


def _place(
    vectors, config: MapConfig, method: str | None
) -> tuple[dict[str, np.ndarray], tuple[float, float], str]:
    n = len(vectors)
    fitted = _fit_sample(n, config)
    z, explained = _pca(vectors, fitted, config)
    coords = {"pca": z[:, :2]}
    sampled = (f"; PCA and {method or 'the map'} fitted on a seeded sample of {len(fitted):,} "
               f"of {n:,} (max_fit_points), PCA projects them all"
               if len(fitted) < n else "")  # fmt: skip
    if method is None:
        return coords, explained, "no non-linear map (nonlinear = 'none')" + sampled
    if len(fitted) < MIN_NONLINEAR_POINTS:
        return coords, explained, (f"{method} skipped: {n} distinct sequences, too few for a "
                                   f"neighbour graph (needs {MIN_NONLINEAR_POINTS})")  # fmt: skip
    xy = np.full((n, 2), np.nan)
    xy[fitted] = (_umap if method == "umap" else _tsne)(z[fitted], config)
    coords[method] = xy
    settings = (
        f"{min(config.umap_neighbors, len(fitted) - 1)} neighbours, min_dist "
        f"{config.umap_min_dist}, {config.umap_epochs} epochs"
        if method == "umap"
        else f"scikit-learn, perplexity {min(30.0, (len(fitted) - 1) / 3):.0f}"
    )
    note = f"{method} on {len(fitted):,} distinct sequences ({settings}, from {z.shape[1]} PCs)"
    if sampled:
        note += f"{sampled}; the others have no {method} coordinates"
    return coords, explained, note


def function_separation(
    xy: np.ndarray, labels: np.ndarray, k: int = PURITY_NEIGHBOURS, seed: int = 0
) -> dict[str, float]:
    """How well a map keeps the labels apart: nearest-neighbour purity (the share of each
    point's k nearest other points with its label, averaged) and the silhouette (sampled
    to 5,000 points). NaN where undefined (one label, or too few points)."""
    ok = np.isfinite(xy).all(axis=1)
    xy, labels = xy[ok], labels[ok]
    n, n_labels = len(xy), len(set(labels))
    out = {"points": n, "nn_purity": float("nan"), "silhouette": float("nan")}
    if n <= k or n_labels < 2:
        return out
    _dist, idx = NearestNeighbors(n_neighbors=k).fit(xy).kneighbors()  # excludes the point
    out["nn_purity"] = float((labels[idx] == labels[:, None]).mean())
    if n_labels < n:
        out["silhouette"] = float(
            silhouette_score(xy, labels, sample_size=min(n, 5000), random_state=seed)
        )
    return out


def _has_values(proteins: pd.DataFrame, column: str) -> bool:
    if column not in proteins:
        return False
    return bool((proteins[column].astype("string").fillna("").str.strip() != "").any())


def _focus(proteins: pd.DataFrame, wanted: str | None) -> str:
    if wanted is None:
        return str(proteins.groupby("function")["seq_hash"].nunique().idxmax())
    if wanted not in set(proteins["function"]):
        raise ValueError(
            f"focus_function {wanted!r} has no embedded protein in this partition; "
            f"its functions are {sorted(set(proteins['function']))}: pick one "
            "of them, or leave focus_function unset"
        )
    return wanted


class CacheRows:
    """Some rows of a master cache as `place` reads them: len() and the vectors at an
    array of positions, read from the HDF5 file when asked (never all at once)."""

    def __init__(self, store: EmbeddingStore, rows: np.ndarray):
        self.store, self.rows = store, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
        return self.store.gather_rows(self.rows[positions])


def _view(
    proteins: pd.DataFrame, rows: np.ndarray, store: EmbeddingStore, config: MapConfig,
    method: str | None, name: str, label_column: str | None,
) -> tuple[pd.DataFrame, dict, list[dict]]:  # fmt: skip
    """Place the distinct vectors (cache `rows`) of one view: per protein coordinates, the
    view's summary row and how well each method separates `label_column`."""
    unique, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    coords, (pc1, pc2), note = place(CacheRows(store, unique), config, method)
    frame = proteins[[c for c in METADATA_COLUMNS if c in proteins]].reset_index(drop=True)
    frame.insert(0, "view", name)
    for m, xy in coords.items():
        frame[f"{m}_x"], frame[f"{m}_y"] = xy[inverse, 0], xy[inverse, 1]
    summary = {"view": name, "proteins": len(proteins), "points": len(unique),
               "pc1_variance": pc1, "pc2_variance": pc2, "nonlinear": note}  # fmt: skip
    separation = []
    if label_column is not None:
        labels = proteins[label_column].astype("string").fillna("").to_numpy()[first]
        separation = [
            {"view": name, "coloured_by": label_column, "method": m,
             **function_separation(xy, labels, seed=config.seed)}
            for m, xy in coords.items()
        ]  # fmt: skip
    return frame, summary, separation


def _embedded(proteins: pd.DataFrame, store: EmbeddingStore) -> tuple[pd.DataFrame, np.ndarray]:
    """The proteins with a vector in `store`, and their cache rows; NothingToMap when they
    hold fewer than MIN_POINTS distinct vectors."""
    embedded = proteins[proteins["brc_fea_id"].isin(set(store.index["brc_fea_id"]))]
    embedded = embedded.reset_index(drop=True)
    rows = store.rows_of(embedded["brc_fea_id"])
    n_distinct = len(np.unique(rows))
    if n_distinct < MIN_POINTS:
        hint = ("; nucleotide embedders need nt_seq, which protein-only inputs lack"
                if embedded.empty and len(proteins) else "")  # fmt: skip
        raise NothingToMap(
            f"{len(embedded)} of {len(proteins)} proteins have a {store.paths.embedder} vector "
            f"({n_distinct} distinct); a map needs {MIN_POINTS} distinct sequences{hint}"
        )
    return embedded, rows


def build_embedding_map(
    proteins: pd.DataFrame, store: EmbeddingStore, config: MapConfig | None = None
) -> EmbeddingMap:
    """Coordinates of every protein of `proteins` with a vector in `store`, for the map of
    all proteins and of the focus function, with how well each map separates functions
    (and the focus function's subtypes)."""
    config = config or MapConfig()
    method = resolve_nonlinear(config.nonlinear)
    embedded, rows = _embedded(proteins, store)
    focus = _focus(embedded, config.focus_function)
    focus_colour = next((c for c in FOCUS_COLOURS if _has_values(embedded, c)), None)
    in_focus = (embedded["function"] == focus).to_numpy()
    views = [("all", np.ones(len(embedded), bool), "function")]
    if focus_colour is not None and len(np.unique(rows[in_focus])) >= MIN_POINTS:
        views.append((focus, in_focus, focus_colour))
    frames, summaries, separation = [], [], []
    with threadpool_limits(limits=1):  # as in `place`: the silhouette's distances too
        for name, keep, label_column in views:
            frame, summary, separates = _view(
                embedded[keep], rows[keep], store, config, method, name, label_column
            )
            frames.append(frame)
            summaries.append(summary)
            separation += separates
    colours = [c for c in COLOUR_COLUMNS if _has_values(embedded, c)]
    missing = {c: ("not a column of protein_final" if c not in embedded else "no values")
               for c in COLOUR_COLUMNS if c not in colours}  # fmt: skip
    if focus_colour is None:
        missing["focus map"] = f"{focus} not mapped alone: no {', '.join(FOCUS_COLOURS)} values"
    return EmbeddingMap(
        coordinates=pd.concat(frames, ignore_index=True),
        methods=["pca"] + [m for m in (method,) if m and f"{m}_x" in frames[0]],
        views=pd.DataFrame(summaries),
        separation=pd.DataFrame(separation),
        focus_function=focus,
        focus_colour=focus_colour if len(views) > 1 else None,
        colour_columns=colours,
        missing_columns=missing,
        proteins_without_vector=len(proteins) - len(embedded),
    )


def _panel_titles(emap: EmbeddingMap, view: str) -> dict[str, str]:
    pc1, pc2 = emap.views.set_index("view").loc[view, ["pc1_variance", "pc2_variance"]]
    titles = {"pca": f"PCA (PC1 {pc1:.0%}, PC2 {pc2:.0%} of the variance)"}
    return {**titles, **{m: m.upper() if m == "umap" else "t-SNE" for m in emap.methods[1:]}}


def map_plots(emap: EmbeddingMap, title: str) -> dict[str, bytes]:
    """PNG per file name: the map of all proteins by each colour column, and the focus
    function's map by its colour column."""
    coords, focus = emap.coordinates, emap.focus_function
    everything = coords[coords["view"] == "all"]
    plots = {
        f"map_by_{column}.png": map_png(
            everything, _panel_titles(emap, "all"), column, f"{title}: all proteins by {column}"
        )
        for column in emap.colour_columns
    }
    if emap.focus_colour is not None:
        name = f"map_{focus}_by_{emap.focus_colour}.png"
        plots[name] = map_png(
            coords[coords["view"] == focus],
            _panel_titles(emap, focus),
            emap.focus_colour,
            f"{title}: {focus} by {emap.focus_colour}",
        )
    return plots


def write_map(out_dir: Path, emap: EmbeddingMap, title: str) -> dict[str, Path]:
    """The coordinates, separation table and plots in `out_dir`, each written atomically;
    returns the files by name."""
    files = {}
    for name, png in map_plots(emap, title).items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(png)
        files[name] = out_dir / name
    with atomic_path(out_dir / "map_coordinates.parquet") as tmp:
        emap.coordinates.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "map_separation.csv") as tmp:
        emap.separation.to_csv(tmp, index=False)
    files["map_coordinates.parquet"] = out_dir / "map_coordinates.parquet"
    files["map_separation.csv"] = out_dir / "map_separation.csv"
    return files
