"""correct_maps end to end on tiny maps."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet.engine import correct_maps
from spIsoNet.errors import InputError

from .helpers import smooth_volume, tiny_case, tiny_settings

# --------------------------------------------------------------------------------------------
# correct_maps end to end (tiny)


def test_independent_halves_never_see_each_other(tmp_path):
    h1, h2, fsc = tiny_case()
    s = tiny_settings(independent=True)
    a = correct_maps(h1, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path)
    other = smooth_volume(32, 99) * 3.0 + 1.0
    b = correct_maps(
        other, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path
    )
    assert len(a.corrected) == 2 and len(a.model_paths) == 2
    assert np.array_equal(a.filtered[1], b.filtered[1])
    assert np.array_equal(a.corrected[1], b.corrected[1])
    assert not np.allclose(a.filtered[0], b.filtered[0])


def test_noise2noise_run_outputs_and_predict_only_round_trip(tmp_path):
    h1, h2, fsc = tiny_case()
    s = tiny_settings(epochs=2, acc_batches=2)
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=s,
        output_dir=tmp_path,
        model_name="pair",
    )
    assert len(r.loss_history) == 2 and np.all(np.isfinite(r.loss_history))
    assert r.model_path == tmp_path / "pair.pt" and (tmp_path / "loss.png").is_file()
    assert set(r.timings) >= {"prepare", "train", "predict", "recombine"}
    for corrected, half in zip(r.corrected, (h1, h2)):
        assert corrected.shape == half.shape and corrected.dtype == np.float32
        # back on the input's scale
        assert abs(corrected.std() / half.std() - 1) < 0.5
    # information beyond limit_res comes from the input half: the high band is unchanged
    from spIsoNet.fourier import frequency_radius, rfft3

    radius = frequency_radius(32)
    high = radius > 32 * 2.0 / 5.0 + 3
    np.testing.assert_allclose(
        rfft3(r.corrected[0])[high], rfft3(h1)[high], rtol=1e-3, atol=1e-3 * np.abs(rfft3(h1)).max()
    )
    # --epochs 0 --pretrained_model: prediction only, identical to the training run's output
    p = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=0),
        output_dir=tmp_path / "predict",
        pretrained_model=r.model_path,
    )
    assert np.array_equal(p.filtered[0], r.filtered[0])
    assert p.loss_history == r.loss_history


def test_single_map_mode_trains(tmp_path):
    h1, _, fsc = tiny_case()
    r = correct_maps(
        h1,
        None,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(),
        output_dir=tmp_path,
    )
    assert len(r.corrected) == 1 and len(r.loss_history) == 1
    assert not np.allclose(r.filtered[0], r.filtered[0].mean())


def test_resume_continues_exactly(tmp_path):
    h1, h2, fsc = tiny_case()
    full = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=2),
        output_dir=tmp_path / "full",
    )
    correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=1),
        output_dir=tmp_path / "part",
    )
    resumed = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=2, resume=True),
        output_dir=tmp_path / "part",
    )
    assert resumed.loss_history == pytest.approx(full.loss_history, rel=1e-6)
    np.testing.assert_allclose(resumed.filtered[0], full.filtered[0], atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"h2": np.zeros((30, 30, 30), np.float32)}, "half-map 2: shape"),
        ({"fsc": np.ones((16, 16, 16), np.float32)}, "FSC3D"),
        ({"settings": {"cube_size": 12, "net_depth": 3}}, "multiple of 2\\^net_depth"),
        ({"settings": {"batch_size": 2, "acc_batches": 4}}, "smaller than processes"),
        ({"settings": {"cube_size": 64}}, "larger than the map"),
        ({"settings": {"epochs": 0}}, "pretrained"),
    ],
)
def test_bad_inputs_fail_before_training(tmp_path, change, message):
    h1, h2, fsc = tiny_case()
    h2 = change.get("h2", h2)
    fsc = change.get("fsc", fsc)
    s = tiny_settings(**change.get("settings", {}))
    with pytest.raises(InputError, match=message):
        correct_maps(h1, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path)
    assert not list(tmp_path.glob("*.pt"))


def test_reference_low_frequencies_are_trusted(tmp_path):
    from spIsoNet.engine.fourier_weight import reference_sphere

    sphere = reference_sphere(16, 2.0, 8.0)  # 1/8 Å⁻¹ = 16·2/8 = 4 cube Fourier pixels
    assert sphere[8, 8, 8 + 3] == 1 and sphere[8, 8, 8 + 4] == 0 and sphere[8 + 3, 8, 8] == 1
    h1, h2, fsc = tiny_case()
    reference = smooth_volume(32, 42, sigma=3.0)
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(),
        output_dir=tmp_path,
        reference=reference,
        ref_resolution=8.0,
    )
    # the network saw the reference's low frequencies: its output correlates with it there
    from spIsoNet.fourier import lowpass

    low_out = lowpass(r.filtered[0], 12.0, 2.0).ravel()
    low_ref = lowpass(reference, 12.0, 2.0).ravel()
    low_half = lowpass(h1, 12.0, 2.0).ravel()
    assert np.corrcoef(low_out, low_ref)[0, 1] > np.corrcoef(low_out, low_half)[0, 1]


def test_working_box_holds_limit_res_and_the_cube():
    from spIsoNet.engine.plan import CROP_MARGIN_SHELLS, working_box

    m = working_box(64, 1.5, 5.91, 32)  # limit at shell 16.2 of 64
    assert m == 2 * int(np.ceil(64 * 1.5 / 5.91 + CROP_MARGIN_SHELLS)) == 42
    assert working_box(64, 1.5, 3.2, 32) == 64  # near Nyquist: nothing to save
    assert working_box(64, 2.0, 40.0, 32) == 32  # never smaller than a cube


def test_fourier_cropped_working_grid_comes_back_on_the_full_grid(tmp_path, caplog):
    import logging

    h1, h2, fsc = tiny_case()
    s = tiny_settings(fourier_crop=True)
    with caplog.at_level(logging.INFO, logger="spIsoNet"):
        r = correct_maps(
            h1, h2, 2.0, fsc3d_volume=fsc, limit_res=10.0, settings=s, output_dir=tmp_path
        )
    assert "working grid 22³ of 2.91 Å (Fourier-cropped from 32³)" in caplog.text
    for filtered, corrected in zip(r.filtered, r.corrected):
        assert filtered.shape == corrected.shape == (32, 32, 32)
        spectrum = np.abs(np.fft.fftn(filtered))
        k = np.abs(np.fft.fftfreq(32, 1 / 32))
        beyond = (k[:, None, None] >= 11) | (k[None, :, None] >= 11) | (k[None, None, :] >= 11)
        assert spectrum[beyond].max() < 1e-4 * spectrum.max()  # nothing beyond the crop
        assert np.isfinite(corrected).all()
        # the network's map is a real correction of the input, on the input's scale
        assert abs(float(filtered.mean()) - float(h1.mean())) < 0.1 * float(h1.std())
