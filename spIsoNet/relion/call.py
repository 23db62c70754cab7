"""What a call of the plugin is: parse the STAR name and the external-reconstruct STAR file.

RELION names the files of one call ``<root>_external_reconstruct.*`` with

=====================================  ==============================================
``<o>_itNNN_half1_class001``            auto-refine, half 1 (``half2`` on the other rank)
``<o>_itNNN_half1_body002``             multi-body refinement, half 1 of body 2
``<o>_itNNN_class001``                  final joined iteration of auto-refine, or a
                                        class of a classification / sequential run
anything else                           ``relion_reconstruct --external_reconstruct``
=====================================  ==============================================

``<o>`` is ``--o`` (it may contain underscores and folders), NNN has 3 or more digits.
This module only parses; it reads no other file than the STAR it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spIsoNet.errors import InputError
from spIsoNet.io.star import StarLoop, key_values, read_star, require_labels, star_version

STAR_SUFFIX = "_external_reconstruct.star"
GENERAL_BLOCK = "external_reconstruct_general"
TAU2_BLOCK = "external_reconstruct_tau2"

# Shortest ``<o>`` for which the rest is exactly the tag: the *last* ``_itNNN`` is the iteration.
_ROOT_RE = re.compile(
    r"^(?P<output_root>.+?)(?:_it(?P<iteration>\d{3,}))?"
    r"(?:_half(?P<half>[12]))?_(?P<kind>class|body)(?P<index>\d{3,})$"
)

#: roles of a call
ROLE_HALF = "half"  # one half of a gold-standard refinement (class or body)
ROLE_JOINED = "joined"  # no half tag: final joined iteration, classification or sequential run
ROLE_OTHER = "other"  # arbitrary root, e.g. relion_reconstruct --external_reconstruct


@dataclass(frozen=True)
class CallName:
    """The parts of a call root.

    Attributes
    ----------
    root
        ``<root>`` (path without ``_external_reconstruct.star``), as given (relative to CWD).
    role
        :data:`ROLE_HALF`, :data:`ROLE_JOINED` or :data:`ROLE_OTHER`.
    output_root
        ``<o>`` (``--o`` of relion_refine), or the root itself for :data:`ROLE_OTHER`.
    iteration
        Iteration number, or None (no ``_itNNN`` part).
    half
        1 or 2 for half calls, else None.
    kind
        ``"class"`` or ``"body"`` (None for :data:`ROLE_OTHER`).
    index
        Class or body number (1-based).
    index_digits
        Digits of the class/body number as written.
    """

    root: str
    role: str
    output_root: str
    iteration: int | None = None
    half: int | None = None
    kind: str | None = None
    index: int | None = None
    index_digits: int = 3

    @property
    def job_dir(self) -> Path:
        """Folder of the call's files (the RELION job folder)."""
        return Path(self.root).parent

    def iteration_root(self, iteration: int) -> str:
        """``<o>_itNNN`` for another iteration, formatted as RELION does (``%03d``)."""
        return f"{self.output_root}_it{iteration:03d}"

    def with_half(self, half: int | None) -> CallName:
        """Return the same call for another half (None: the joined root)."""
        if self.role == ROLE_OTHER:
            raise ValueError("a call without a class/body tag has no halves")
        parts = [self.output_root]
        if self.iteration is not None:
            parts.append(f"it{self.iteration:03d}")
        if half is not None:
            parts.append(f"half{half}")
        parts.append(f"{self.kind}{self.index:0{self.index_digits}d}")
        return replace(
            self,
            root="_".join(parts),
            half=half,
            role=ROLE_HALF if half is not None else ROLE_JOINED,
        )

    @property
    def partner(self) -> CallName | None:
        """The call of the other half (None unless this is a half call)."""
        if self.half is None:
            return None
        return self.with_half(3 - self.half)

    @property
    def tag(self) -> str:
        """Short name for logs: ``it004 half1 class001``."""
        if self.role == ROLE_OTHER:
            return Path(self.root).name
        bits = []
        if self.iteration is not None:
            bits.append(f"it{self.iteration:03d}")
        if self.half is not None:
            bits.append(f"half{self.half}")
        bits.append(f"{self.kind}{self.index:0{self.index_digits}d}")
        return " ".join(bits)


def parse_root(star_path: str) -> CallName:
    """Parse ``<root>_external_reconstruct.star`` (the one argument RELION passes).

    Raises
    ------
    InputError
        The name does not end in ``_external_reconstruct.star``.
    """
    text = str(star_path)
    if not text.endswith(STAR_SUFFIX):
        raise InputError(f"{text}: expected a RELION <root>{STAR_SUFFIX} file")
    root = text[: -len(STAR_SUFFIX)]
    folder, _, base = root.rpartition("/")
    match = _ROOT_RE.match(base)
    if match is None:
        return CallName(root=root, role=ROLE_OTHER, output_root=root)
    output_root = (folder + "/" if folder else "") + match["output_root"]
    iteration = match["iteration"]
    half = match["half"]
    return CallName(
        root=root,
        role=ROLE_HALF if half else ROLE_JOINED,
        output_root=output_root,
        iteration=int(iteration) if iteration is not None else None,
        half=int(half) if half else None,
        kind=match["kind"],
        index=int(match["index"]),
        index_digits=len(match["index"]),
    )


@dataclass
class ExternalStar:
    """Contents of ``<root>_external_reconstruct.star``.

    Attributes
    ----------
    path
        The STAR file.
    data_real, data_imag, weight
        Paths of the three input arrays (relative to CWD, as written by RELION).
    result
        Where RELION reads the map back (``rlnExtReconsResult``).
    result_star
        Optional FSC/tau2 feedback file (``rlnExtReconsResultStarfile``).
    tau2_fudge
        ``T`` (``rlnTau2FudgeFactor``).
    padding
        ``pf`` (``rlnPaddingFactor``).
    dimensionality
        ``rlnReferenceDimensionality`` (3; 2 for 2D classification, not supported).
    ori_size
        ``N``.
    current_size
        ``rlnCurrentImageSize``.
    pixel_size
        ``rlnPixelSize`` in Å (RELION 4.0+), None if absent or not positive (3.1 files;
        ``relion_reconstruct`` writes 0).
    particle_diameter
        ``rlnParticleDiameter`` in Å (4.0+), None if absent.
    tau2
        ``rlnReferenceTau2`` per shell (float64), None when the tau2 block is missing.
    fsc
        ``rlnGoldStandardFsc`` per shell, None when absent.
    version
        The ``# version`` number of the file (30001 for 3.1/4.0, 50001 for 5.0) if found.
    """

    path: str
    data_real: str
    data_imag: str
    weight: str
    result: str
    result_star: str | None
    tau2_fudge: float
    padding: float
    dimensionality: int
    ori_size: int
    current_size: int
    pixel_size: float | None = None
    particle_diameter: float | None = None
    tau2: np.ndarray | None = None
    fsc: np.ndarray | None = None
    version: int | None = None
    notes: list[str] = field(default_factory=list)


def _as_float(value, label: str, path: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {label} is not a number: {value!r}") from None


def _table_column(table: StarLoop, label: str, n_shells: int, path: str) -> np.ndarray:
    """Return a per-shell column placed by ``rlnSpectralIndex`` (shells not in the table: 0).

    Raises
    ------
    InputError
        A value that is not a finite number, or a spectral index outside ``0 … n_shells−1``.
    """
    out = np.zeros(n_shells, dtype=np.float64)
    try:
        index = np.asarray(table["rlnSpectralIndex"], dtype=np.float64)
        values = np.asarray(table[label], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: data_{TAU2_BLOCK}: {label} has values that are not numbers"
        ) from None
    if not (np.isfinite(values).all() and np.isfinite(index).all()):
        raise InputError(f"{path}: data_{TAU2_BLOCK}: {label} has NaN/Inf values")
    if np.any(index != np.round(index)) or np.any(index < 0) or np.any(index >= n_shells):
        raise InputError(f"{path}: data_{TAU2_BLOCK}: rlnSpectralIndex outside 0…{n_shells - 1}")
    out[index.astype(np.int64)] = values
    return out


def _check_tau2_table(table: StarLoop, r_max: int, path: str) -> None:
    """Check that the table holds every shell the reconstruction uses (0 … ``r_max``) once.

    A STAR file cut inside its tau2 loop would otherwise give a map regularised with tau2 = 0
    beyond the cut (25 % off RELION's in the case that was reported).
    """
    try:
        index = np.asarray(table["rlnSpectralIndex"], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: data_{TAU2_BLOCK}: rlnSpectralIndex is not numeric") from None
    if len(set(index.tolist())) != index.size:  # (np.unique would import numpy.ma)
        raise InputError(f"{path}: data_{TAU2_BLOCK}: repeated rlnSpectralIndex values")
    present = set(index[(index >= 0) & (index <= r_max)].astype(np.int64).tolist())
    missing = sorted(set(range(r_max + 1)) - present)
    if missing:
        raise InputError(
            f"{path}: data_{TAU2_BLOCK} is truncated or inconsistent: {table.n_rows} rows, "
            f"shells {missing[0]}…{missing[-1]} of the 0…{r_max} the current size needs are missing"
        )


def read_external_star(path: str) -> ExternalStar:
    """Read and validate RELION's external-reconstruct STAR file.

    Raises
    ------
    InputError
        Missing/malformed file or general block, missing labels, impossible sizes.
    """
    blocks = read_star(path)
    general = key_values(blocks, GENERAL_BLOCK, path)
    required = [
        "rlnExtReconsDataReal",
        "rlnExtReconsWeight",
        "rlnExtReconsResult",
        "rlnPaddingFactor",
        "rlnOriginalImageSize",
        "rlnCurrentImageSize",
    ]
    require_labels(general, required, GENERAL_BLOCK, path)
    notes: list[str] = []
    data_real = str(general["rlnExtReconsDataReal"])
    if "rlnExtReconsDataImag" in general:
        data_imag = str(general["rlnExtReconsDataImag"])
    else:  # what relion_external_reconstruct does: derive it from the real part's name
        data_imag = data_real.replace("_real", "_imag", 1)
        notes.append("rlnExtReconsDataImag missing; derived from rlnExtReconsDataReal")
    ori_size = int(_as_float(general["rlnOriginalImageSize"], "rlnOriginalImageSize", path))
    current_size = int(_as_float(general["rlnCurrentImageSize"], "rlnCurrentImageSize", path))
    padding = _as_float(general["rlnPaddingFactor"], "rlnPaddingFactor", path)
    dimensionality = int(
        _as_float(general.get("rlnReferenceDimensionality", 3), "rlnReferenceDimensionality", path)
    )
    tau2_fudge = _as_float(general.get("rlnTau2FudgeFactor", 1.0), "rlnTau2FudgeFactor", path)
    if ori_size < 2:
        raise InputError(f"{path}: rlnOriginalImageSize {ori_size} is too small")
    if not padding >= 1.0:
        raise InputError(f"{path}: rlnPaddingFactor {padding:g} must be at least 1")
    if dimensionality != 3:
        raise InputError(
            f"{path}: rlnReferenceDimensionality {dimensionality}: only 3D references are supported"
        )
    pixel_size = None
    if "rlnPixelSize" in general:
        value = _as_float(general["rlnPixelSize"], "rlnPixelSize", path)
        pixel_size = value if value > 0 else None
    diameter = None
    if "rlnParticleDiameter" in general:
        value = _as_float(general["rlnParticleDiameter"], "rlnParticleDiameter", path)
        diameter = value if value > 0 else None

    tau2 = fsc = None
    n_shells = ori_size // 2 + 1
    r_max = (ori_size if current_size < 0 or current_size > ori_size else current_size) // 2
    table = blocks.get(TAU2_BLOCK)
    if table is not None:
        if not isinstance(table, StarLoop):
            raise InputError(f"{path}: data_{TAU2_BLOCK} is not a loop")
        require_labels(table, ["rlnSpectralIndex", "rlnReferenceTau2"], TAU2_BLOCK, path)
        _check_tau2_table(table, r_max, path)
        tau2 = _table_column(table, "rlnReferenceTau2", n_shells, path)
        if "rlnGoldStandardFsc" in table:
            fsc = _table_column(table, "rlnGoldStandardFsc", n_shells, path)
    else:
        notes.append("no tau2 table: reconstruction without the MAP term (as --no_map)")
    result_star = general.get("rlnExtReconsResultStarfile")
    return ExternalStar(
        path=str(path),
        data_real=data_real,
        data_imag=data_imag,
        weight=str(general["rlnExtReconsWeight"]),
        result=str(general["rlnExtReconsResult"]),
        result_star=str(result_star) if result_star is not None else None,
        tau2_fudge=tau2_fudge,
        padding=padding,
        dimensionality=dimensionality,
        ori_size=ori_size,
        current_size=current_size,
        pixel_size=pixel_size,
        particle_diameter=diameter,
        tau2=tau2,
        fsc=fsc,
        version=star_version(path),
        notes=notes,
    )
