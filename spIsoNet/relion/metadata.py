"""The job's RELION STAR files around a call: previous iteration and the original command line.

At the call for iteration N the newest per-iteration files are those of iteration N−1
(``<o>_it(N−1)_optimiser.star``, ``_sampling.star``, ``_half1_model.star``, ``_data.star``);
``--ini_high`` and ``--keep_lowres`` are only in the command-line comment (line 2) of the first
optimiser file of the run (``<o>_it000_optimiser.star``). Labels are read by name with
:func:`spIsoNet.io.star.read_star` (3.1, 4.0 and 5.0 write the same labels; extra labels are
ignored).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from spIsoNet.errors import InputError
from spIsoNet.io.star import key_values, read_star

from .call import CallName


class MetadataError(InputError):
    """A RELION metadata file needed for the correction is missing or unreadable."""


@dataclass
class IterationMetadata:
    """What the plugin knows about the refinement at this call.

    Attributes
    ----------
    previous_iteration
        N−1 (the files read), or None when the call has no iteration.
    healpix_order
        ``rlnHealpixOrder`` of the previous iteration's sampling file.
    symmetry
        ``rlnSymmetryGroup`` (e.g. ``C1``).
    solvent_mask
        Path of ``rlnSolventMaskName`` (None when RELION has no mask).
    pixel_size, pixel_size_source
        Å per pixel of the reference, and where it came from.
    particle_diameter
        ``rlnParticleDiameter`` in Å (optimiser), if known.
    current_resolution
        RELION's own ``rlnCurrentResolution`` (Å) of the previous iteration's model STAR (this
        half's, else half1's or the joined one); None when unknown or not finite (``inf`` at
        iteration 0).
    model_file
        The model STAR file it was read from.
    split_halves, auto_refine
        ``rlnDoSplitRandomHalves`` / ``rlnDoAutoRefine`` of the optimiser.
    command_line
        The first optimiser file's command line (``--o ... --ini_high 30 ...``).
    ini_high
        ``--ini_high`` in Å, None when not on the command line.
    keep_lowres
        ``--keep_lowres`` was on the command line.
    sequential_halves
        ``--sequential_halves_recons`` on the first or the latest command line.
    previous_halfmaps
        ``<o>_it(N−1)_half{1,2}_<kind>NNN.mrc`` (may not exist).
    initial_references
        ``<o>_it000_half{1,2}_<kind>NNN.mrc`` if they exist, else ``<o>_it000_<kind>NNN.mrc``
        if that exists (key 0), for keep-lowres.
    files
        label → path of every file read.
    notes
        Defaults taken because optional information was missing (logged by the wrapper).
    """

    previous_iteration: int | None = None
    healpix_order: int | None = None
    symmetry: str | None = None
    solvent_mask: str | None = None
    pixel_size: float | None = None
    pixel_size_source: str = ""
    particle_diameter: float | None = None
    current_resolution: float | None = None
    model_file: str | None = None
    split_halves: bool | None = None
    auto_refine: bool | None = None
    command_line: str = ""
    ini_high: float | None = None
    keep_lowres: bool = False
    sequential_halves: bool = False
    previous_halfmaps: dict[int, str] = field(default_factory=dict)
    initial_references: dict[int, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def command_line_of(optimiser_path: str | Path) -> str:
    """Return the command line stored in an optimiser STAR file's comment ('' if none)."""
    try:
        with open(optimiser_path, encoding="utf-8", errors="replace") as handle:
            head = [handle.readline() for _ in range(3)]
    except OSError as exc:
        raise MetadataError(f"{optimiser_path}: cannot read: {exc.strerror}") from None
    for line in head[1:]:
        text = line.strip()
        if text.startswith("#") and "--" in text:
            return text.lstrip("#").strip()
    return ""


def option_value(command_line: str, option: str) -> str | None:
    """Value after ``option`` on a command line (last occurrence), None if absent."""
    import shlex

    try:
        tokens = shlex.split(command_line)
    except ValueError:
        tokens = command_line.split()
    value = None
    for i, token in enumerate(tokens):
        if token == option and i + 1 < len(tokens):
            value = tokens[i + 1]
        elif token.startswith(option + "="):
            value = token.split("=", 1)[1]
    return value


def has_option(command_line: str, option: str) -> bool:
    """``option`` appears as a whole token."""
    return option in command_line.split()


def _iteration_files(output_root: str) -> dict[int, Path]:
    """Existing ``<o>_itNNN_optimiser.star`` files by iteration."""
    root = Path(output_root)
    folder = root.parent
    pattern = re.compile(re.escape(root.name) + r"_it(\d{3,})_optimiser\.star$")
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def _float_or_none(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bool_or_none(value) -> bool | None:
    number = _float_or_none(value)
    return None if number is None else bool(number)


def _optics_pixel_size(data_star: Path) -> float | None:
    """First optics group's ``rlnImagePixelSize``, reading only the ``data_optics`` block.

    ``_data.star`` holds every particle; parsing it whole would take seconds to minutes.
    """
    labels: list[str] = []
    in_optics = in_loop = False
    with open(data_star, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            text = line.strip()
            if text.startswith("data_"):
                if in_optics:
                    break
                in_optics = text == "data_optics"
                continue
            if not in_optics or not text or text.startswith("#"):
                continue
            if text.startswith("loop_"):
                in_loop = True
            elif text.startswith("_"):
                labels.append(text.split()[0].lstrip("_"))
            elif in_loop and labels:
                row = text.split()
                if "rlnImagePixelSize" in labels and len(row) == len(labels):
                    return _float_or_none(row[labels.index("rlnImagePixelSize")])
                return None
    return None


def read_iteration_metadata(
    call: CallName, star_pixel_size: float | None = None, *, need_previous: bool = True
) -> IterationMetadata:
    """Read the previous iteration's optimiser/sampling/model files and the first command line.

    Parameters
    ----------
    call
        The parsed call (needs an iteration for the per-iteration files).
    star_pixel_size
        ``rlnPixelSize`` of the external STAR (4.0+), preferred when positive.
    need_previous
        Raise :class:`MetadataError` when the previous optimiser/sampling file is missing
        (else: leave the fields None and add a note).

    Raises
    ------
    MetadataError
        A required file is missing or malformed (the message names it).
    """
    meta = IterationMetadata()
    if star_pixel_size:
        meta.pixel_size, meta.pixel_size_source = star_pixel_size, "external STAR rlnPixelSize"
    if call.iteration is None:
        if need_previous:
            raise MetadataError(f"{call.root}: call has no iteration number; no metadata to read")
        meta.notes.append("no iteration number: previous-iteration metadata not read")
        return meta
    prev = call.iteration - 1
    meta.previous_iteration = prev
    prefix = call.iteration_root(prev)

    def read_block(label: str, path: str, block: str, required: bool) -> dict | None:
        if not Path(path).is_file():
            if required:
                raise MetadataError(f"{path}: RELION {label} file not found")
            meta.notes.append(f"{path} not found")
            return None
        try:
            values = key_values(read_star(path), block, path)
        except InputError as exc:
            if required:
                raise MetadataError(str(exc)) from None
            meta.notes.append(str(exc))
            return None
        meta.files[label] = path
        return values

    optimiser_path = f"{prefix}_optimiser.star"
    optimiser = read_block("optimiser", optimiser_path, "optimiser_general", need_previous)
    sampling = read_block("sampling", f"{prefix}_sampling.star", "sampling_general", need_previous)
    if sampling is not None:
        order = _float_or_none(sampling.get("rlnHealpixOrder"))
        meta.healpix_order = int(order) if order is not None else None
        if meta.healpix_order is None:
            meta.notes.append(f"{prefix}_sampling.star has no rlnHealpixOrder")
        symmetry = sampling.get("rlnSymmetryGroup")
        meta.symmetry = str(symmetry) if symmetry is not None else None
    if optimiser is not None:
        mask = str(optimiser.get("rlnSolventMaskName", "None")).strip()
        meta.solvent_mask = None if mask in {"", "None", "none"} else mask
        if meta.solvent_mask and not Path(meta.solvent_mask).is_file():
            meta.notes.append(f"solvent mask {meta.solvent_mask} not found; no mask used")
            meta.solvent_mask = None
        meta.particle_diameter = _float_or_none(optimiser.get("rlnParticleDiameter"))
        meta.split_halves = _bool_or_none(optimiser.get("rlnDoSplitRandomHalves"))
        meta.auto_refine = _bool_or_none(optimiser.get("rlnDoAutoRefine"))

    # RELION's current resolution (and the pixel size when the external STAR lacks it) from the
    # previous iteration's model STAR of this half (half1's or the joined one as fallbacks).
    halves = [call.half] if call.half else []
    models = [f"{prefix}_half{h}_model.star" for h in dict.fromkeys([*halves, 1])]
    for model in [*models, f"{prefix}_model.star"]:
        if not Path(model).is_file():
            continue
        general = read_block("model", model, "model_general", False)
        if general is None:
            continue
        meta.model_file = model
        resolution = _float_or_none(general.get("rlnCurrentResolution"))
        meta.current_resolution = resolution if resolution and resolution > 0 else None
        value = _float_or_none(general.get("rlnPixelSize"))
        if meta.pixel_size is None and value and value > 0:
            meta.pixel_size, meta.pixel_size_source = value, f"{model} rlnPixelSize"
        break
    else:
        meta.notes.append(f"{prefix}_half*_model.star not found: RELION's resolution unknown")
    if meta.pixel_size is None and Path(f"{prefix}_data.star").is_file():
        value = _optics_pixel_size(Path(f"{prefix}_data.star"))
        if value and value > 0:
            meta.pixel_size = value
            meta.pixel_size_source = f"{prefix}_data.star rlnImagePixelSize"
    if meta.pixel_size is None:
        meta.notes.append("pixel size unknown (no rlnPixelSize in STAR/model/data files)")

    # Command line of the run's first optimiser file (the continuation files lack --ini_high).
    optimisers = _iteration_files(call.output_root)
    first = optimisers.get(0) or (optimisers[min(optimisers)] if optimisers else None)
    if first is not None:
        meta.command_line = command_line_of(first)
        meta.files["first optimiser"] = str(first)
    else:
        meta.notes.append(f"{call.output_root}_it000_optimiser.star not found")
    latest = command_line_of(optimiser_path) if optimiser is not None else ""
    ini_high = _float_or_none(option_value(meta.command_line, "--ini_high"))
    if ini_high is None:
        ini_high = _float_or_none(option_value(latest, "--ini_high"))
    meta.ini_high = ini_high if ini_high and ini_high > 0 else None
    if meta.ini_high is None:
        meta.notes.append("--ini_high not on the command line: keep-lowres not possible")
    meta.keep_lowres = has_option(meta.command_line, "--keep_lowres") or has_option(
        latest, "--keep_lowres"
    )
    meta.sequential_halves = has_option(
        meta.command_line, "--sequential_halves_recons"
    ) or has_option(latest, "--sequential_halves_recons")

    if call.kind is not None:
        tag = f"{call.kind}{call.index:0{call.index_digits}d}"
        for half in (1, 2):
            meta.previous_halfmaps[half] = f"{prefix}_half{half}_{tag}.mrc"
        first_root = call.iteration_root(0)
        for half in (1, 2):
            path = f"{first_root}_half{half}_{tag}.mrc"
            if Path(path).is_file():
                meta.initial_references[half] = path
        joined = f"{first_root}_{tag}.mrc"
        if not meta.initial_references and Path(joined).is_file():
            meta.initial_references[0] = joined
    return meta
