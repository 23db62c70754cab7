"""How close a map is to the ground truth: global and directional FSC to the truth."""

from __future__ import annotations

import numpy as np

__all__ = ["TRUTH_ROWS", "TRUTH_THRESHOLD", "improvement", "truth_metrics"]

#: threshold of the FSC between a map and the truth that corresponds to the half-map 0.143
#: criterion (FSC_truth = sqrt(2 FSC / (1 + FSC)) = 0.5 at FSC = 0.143)
TRUTH_THRESHOLD = 0.5
#: shells below this are not searched for a crossing (a 20° cone holds < 20 voxels there)
MIN_SHELL = 5
#: rows of the before/after table (:func:`spIsoNet.fsc3d.format_metrics`)
TRUTH_ROWS = (
    ("worst direction resolution (Å)", "dir_res_worst", "{:.2f}"),
    ("best direction resolution (Å)", "dir_res_best", "{:.2f}"),
    ("mean directional resolution (Å)", "dir_res_mean", "{:.2f}"),
    ("global resolution (Å)", "global_res", "{:.2f}"),
    ("sphericity (map vs truth 3DFSC)", "sphericity", "{:.3f}"),
)


def truth_metrics(
    volume: np.ndarray,
    truth: np.ndarray,
    voxel_size: float,
    *,
    mask: np.ndarray | None = None,
    n_directions: int = 128,
    cone_angle: float = 20.0,
    threshold: float = TRUTH_THRESHOLD,
    with_sphericity: bool = True,
) -> dict:
    """How well a map agrees with the ground truth, globally and per direction.

    Parameters
    ----------
    volume, truth : np.ndarray
        float [n, n, n] map and ground truth (same grid).
    voxel_size : float
        Å.
    mask : np.ndarray, optional
        Soft mask applied to both before the FFTs.
    n_directions : int
        Fibonacci directions on a hemisphere.
    cone_angle : float
        Cone half-angle of the directional FSC, degrees.
    threshold : float
        FSC-to-truth threshold (0.5 ↔ half-map 0.143).
    with_sphericity : bool
        Also compute the sphericity of the map-vs-truth 3DFSC
        (:func:`spIsoNet.fsc3d.anisotropy_summary`, at its 0.143 convention).

    Returns
    -------
    dict
        ``global_res`` (Å), ``dir_res_worst``/``dir_res_best``/``dir_res_mean``/``dir_res_std``
        (Å), ``worst_direction``/``best_direction`` (z, y, x), ``sphericity`` (or None), and the
        arrays ``global_fsc`` [n//2+1], ``directions`` [d, 3], ``curves`` [d, n//2+1],
        ``dir_res`` [d] (Å) for plots.
    """
    from spIsoNet.fourier import fsc_curve, resolution_at
    from spIsoNet.fsc3d import anisotropy_summary, directional_fsc, first_crossings

    n = volume.shape[0]
    global_fsc = np.asarray(fsc_curve(volume, truth, mask), dtype=np.float64)
    directions, curves = directional_fsc(
        volume, truth, n_directions=n_directions, cone_angle=cone_angle, mask=mask
    )
    crossings = first_crossings(curves, threshold, min_shell=MIN_SHELL, clip_to_min_shell=True)
    dir_res = crossings.resolution(n, voxel_size)
    worst, best = int(np.argmax(dir_res)), int(np.argmin(dir_res))
    sphericity = None
    if with_sphericity:
        summary = anisotropy_summary(volume, truth, voxel_size, mask=mask)
        sphericity = float(summary.sphericity)
    return {
        "global_res": float(resolution_at(global_fsc, n, voxel_size, threshold).angstrom),
        "dir_res_worst": float(dir_res[worst]),
        "dir_res_best": float(dir_res[best]),
        "dir_res_mean": float(dir_res.mean()),
        "dir_res_std": float(dir_res.std()),
        "worst_direction": [round(float(v), 4) for v in directions[worst]],
        "best_direction": [round(float(v), 4) for v in directions[best]],
        "sphericity": sphericity,
        "global_fsc": global_fsc,
        "directions": np.asarray(directions),
        "curves": np.asarray(curves),
        "dir_res": dir_res,
    }


def improvement(before: dict, after: dict) -> dict:
    """Relative changes (positive = better) of the worst/best directional and global resolution."""

    def gain(key: str) -> float:
        return (before[key] - after[key]) / before[key]

    return {
        "worst_direction_gain": gain("dir_res_worst"),
        "best_direction_gain": gain("dir_res_best"),
        "global_gain": gain("global_res"),
        "mean_direction_gain": gain("dir_res_mean"),
    }
