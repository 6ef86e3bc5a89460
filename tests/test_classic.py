"""Tests for dtcm.classic: the classical enhancers (GIC, HE, CLAHE, MSR) on uint8 RGB clips."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dtcm.classic import (
    CLASSIC_ENHANCERS,
    GAMMA_RANGE,
    _surround,
    auto_gamma,
    clahe,
    enhance_classic,
    gic,
    hist_eq,
    msr,
)

NAMES = sorted(CLASSIC_ENHANCERS)


def luma(frames: np.ndarray) -> np.ndarray:
    """Y of YCrCb (0..255, float) of (..., H, W, 3) uint8 RGB frames."""
    return 0.299 * frames[..., 0] + 0.587 * frames[..., 1] + 0.114 * frames[..., 2]


def dark_clip(t: int = 3, h: int = 48, w: int = 64, peak: float = 40.0, seed: int = 0) -> np.ndarray:
    """A dark clip: a smooth coloured scene at levels 0..peak plus a little noise, (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.uniform(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 4)
    scene = (scene - scene.min()) / (scene.max() - scene.min()) * peak
    noise = rng.normal(0, 1.5, (t, h, w, 3))
    return np.clip(np.rint(scene[None] + noise), 0, 255).astype(np.uint8)


def dark_gradient(h: int = 120, w: int = 160, peak: int = 40) -> np.ndarray:
    """A smooth dark grey ramp, 0 at the left to ``peak`` at the right: (H, W, 3) uint8."""
    ramp = np.rint(np.linspace(0, peak, w)).astype(np.uint8)
    return np.repeat(np.broadcast_to(ramp, (h, w))[..., None], 3, axis=2).copy()


# ------------------------------------------------------------------------------------------------
# Shapes, dtypes, registry
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_clip_and_frame_keep_shape_and_dtype(name):
    clip = dark_clip()
    before = clip.copy()
    out = enhance_classic(name, clip)
    assert out.shape == clip.shape and out.dtype == np.uint8
    frame_out = enhance_classic(name, clip[0])
    assert frame_out.shape == clip[0].shape and frame_out.dtype == np.uint8
    np.testing.assert_array_equal(clip, before)  # the input is never modified


@pytest.mark.parametrize("name", NAMES)
def test_single_frame_matches_one_frame_clip(name):
    clip = dark_clip(t=1)
    np.testing.assert_array_equal(enhance_classic(name, clip[0]), enhance_classic(name, clip)[0])


@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_input_and_empty_clip(name):
    clip = dark_clip()
    flipped = clip[:, ::-1, :, ::-1]  # a strided view (vertical flip, RGB -> BGR)
    np.testing.assert_array_equal(enhance_classic(name, flipped), enhance_classic(name, np.ascontiguousarray(flipped)))
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    assert enhance_classic(name, empty).shape == (0, 8, 8, 3)


def test_registry_and_unknown_name():
    assert set(CLASSIC_ENHANCERS) == {"gic", "he", "clahe", "msr"}
    assert CLASSIC_ENHANCERS["he"] is hist_eq
    with pytest.raises(ValueError, match="known: gic, he, clahe, msr"):
        enhance_classic("zero_dce", dark_clip())


def test_enhance_classic_passes_keyword_arguments():
    clip = dark_clip()
    np.testing.assert_array_equal(enhance_classic("gic", clip, gamma=0.4), gic(clip, gamma=0.4))
    np.testing.assert_array_equal(
        enhance_classic("clahe", clip, clip_limit=4.0, tile=4), clahe(clip, clip_limit=4.0, tile=4)
    )


# ------------------------------------------------------------------------------------------------
# Behaviour on dark input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_brightens_a_dark_frame(name):
    frame = dark_clip(t=1)[0]
    out = enhance_classic(name, frame)
    assert luma(out).mean() > luma(frame).mean() + 5


def test_hist_eq_spreads_a_dark_gradient():
    frame = dark_gradient(peak=40)
    out = hist_eq(frame)
    y = luma(out)
    assert np.ptp(luma(frame)) <= 40
    assert np.ptp(y) > 200  # the 41 input levels are spread over more than 200 output levels
    assert np.all(np.diff(y[0]) >= 0)  # equalisation keeps the order of levels


def test_gic_gamma_one_is_identity():
    clip = np.random.default_rng(1).integers(0, 256, (2, 17, 23, 3), dtype=np.uint8)
    out = gic(clip, gamma=1.0)
    np.testing.assert_array_equal(out, clip)
    assert out is not clip


def test_gic_fixed_gamma_follows_the_power_law():
    levels = np.arange(256, dtype=np.uint8)
    frame = np.repeat(levels.reshape(16, 16, 1), 3, axis=2)
    expected = np.rint(255 * (levels / 255.0) ** 0.5).reshape(16, 16)
    np.testing.assert_array_equal(gic(frame, gamma=0.5)[..., 1], expected)
    assert gic(np.full((2, 2, 3), 64, np.uint8), gamma=0.5)[0, 0, 0] == 128


@pytest.mark.parametrize(
    "clip",
    [
        dark_clip(peak=40),
        dark_clip(peak=12, seed=3),
        # skewed: mostly level 4 with one bright square, where log(0.5)/log(mean) would give ~92
        np.pad(np.full((2, 10, 10, 3), 200, np.uint8), ((0, 0), (0, 30), (0, 30), (0, 0)), constant_values=4),
        np.full((2, 8, 8, 3), 230, np.uint8),  # too bright: gamma > 1 darkens it
    ],
    ids=["dark", "very_dark", "skewed", "bright"],
)
def test_gic_auto_puts_mean_luma_near_128(clip):
    out = gic(clip)
    assert abs(luma(out).mean() - 127.5) < 3


def test_auto_gamma_rule_and_clamp():
    for level in (5, 30, 100, 200):
        expected = math.log(0.5) / math.log(level / 255)
        assert auto_gamma(np.full((4, 4, 3), level, np.uint8)) == pytest.approx(expected, rel=1e-6)
    assert auto_gamma(np.zeros((2, 4, 4, 3), np.uint8)) == GAMMA_RANGE[0]
    assert auto_gamma(np.full((2, 4, 4, 3), 255, np.uint8)) == GAMMA_RANGE[1]
    np.testing.assert_array_equal(gic(np.zeros((4, 4, 3), np.uint8)), np.zeros((4, 4, 3), np.uint8))


def test_gic_uses_one_gamma_per_clip():
    clip = dark_clip(t=2)
    clip[1] //= 2  # a darker second frame gets the clip's gamma, not its own
    gamma = auto_gamma(clip)
    np.testing.assert_array_equal(gic(clip), gic(clip, gamma=gamma))
    np.testing.assert_array_equal(gic(clip)[1], gic(clip[1], gamma=gamma))


def dark_colours(h: int = 64) -> np.ndarray:
    """Five dark colour columns (red, green, blue, orange, purple) 16 px wide, each a ramp from 30 % to full: (H, 80, 3)."""
    colours = np.array([(40, 10, 5), (8, 35, 10), (5, 10, 45), (45, 25, 5), (30, 8, 35)], np.float32)
    ramp = np.linspace(0.3, 1.0, h, dtype=np.float32)
    img = ramp[:, None, None, None] * colours[None, :, None, :]  # (H, 5, 1, 3)
    return np.rint(img).repeat(16, 2).reshape(h, 80, 3).astype(np.uint8)


def hue_saturation(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSV hue (degrees) and saturation ((max - min) / max) of uint8 RGB frames."""
    hsv = cv2.cvtColor(frames.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
    return hsv[..., 0], hsv[..., 1]


@pytest.mark.parametrize("fn", [hist_eq, clahe], ids=["he", "clahe"])
def test_luma_methods_keep_grey_grey(fn):
    grey = dark_gradient()
    out = fn(grey)
    assert np.abs(out.astype(int) - out[..., :1]).max() <= 1  # R, G and B stay equal
    assert luma(out).mean() > luma(grey).mean()


@pytest.mark.parametrize("fn", [hist_eq, clahe], ids=["he", "clahe"])
def test_luma_methods_keep_the_hue_and_saturation_of_a_dark_coloured_input(fn):
    frame = dark_colours()
    out = fn(frame)
    assert luma(out).mean() > luma(frame).mean() + 5
    h0, s0 = hue_saturation(frame)
    h1, s1 = hue_saturation(out)
    shown = (out.max(-1) > 10) & (out.max(-1) < 255)  # neither mapped to black nor at the top of the gamut
    assert shown.mean() > 0.4
    assert np.abs((h1 - h0 + 180) % 360 - 180)[shown].max() < 4  # hue kept (up to 8-bit rounding)
    assert (s1 / s0)[shown].min() > 0.95  # not greyed out: keeping Cb, Cr as they were gave 0.12 (HE), 0.45 (CLAHE)


def test_luma_methods_put_luma_where_the_equalisation_puts_it():
    frame = dark_colours()
    y8 = np.rint(luma(frame)).astype(np.uint8)
    assert np.abs(luma(hist_eq(frame)) - cv2.equalizeHist(y8)).max() <= 1  # colour carried over, luma exact


def test_clahe_tile_and_limit_matter():
    frame = dark_clip(t=1, h=64, w=64)[0]
    assert not np.array_equal(clahe(frame, clip_limit=1.0), clahe(frame, clip_limit=8.0))
    assert not np.array_equal(clahe(frame, tile=2), clahe(frame, tile=8))


@pytest.mark.parametrize("restore_color", [False, True])
def test_msr_output_spans_a_wide_range(restore_color):
    clip = dark_clip(peak=30)
    out = msr(clip, restore_color=restore_color)
    lo, hi = np.percentile(out, (1, 99))
    assert hi - lo > 200
    assert np.ptp(clip) < 50


def test_msr_flat_clip_comes_back_unchanged():
    flat = np.full((2, 16, 16, 3), 7, np.uint8)
    np.testing.assert_array_equal(msr(flat), flat)


def test_msr_fewer_scales_and_colour_restoration_differ():
    clip = dark_clip()
    assert not np.array_equal(msr(clip), msr(clip, sigmas=(15,)))
    assert not np.array_equal(msr(clip), msr(clip, restore_color=True))


@pytest.mark.parametrize("sigma", [3.0, 15.0, 80.0, 250.0])
def test_surround_approximates_the_direct_gaussian(sigma):
    img = (dark_clip(t=1, h=120, w=160, peak=200)[0] + 1).astype(np.float32)
    direct = cv2.GaussianBlur(img, (0, 0), sigma)
    err = np.abs(np.log(_surround(img, sigma)) - np.log(direct))
    assert err.mean() < 0.02 and err.max() < 0.1


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

BAD_INPUTS = [
    (np.zeros((8, 8), np.uint8), r"shape \(8, 8\)"),
    (np.zeros((1, 2, 8, 8, 3), np.uint8), r"shape \(1, 2, 8, 8, 3\)"),
    (np.zeros((2, 8, 8, 4), np.uint8), r"shape \(2, 8, 8, 4\)"),
    (np.zeros((2, 3, 8, 8), np.uint8), r"shape \(2, 3, 8, 8\)"),
    (np.zeros((2, 8, 8, 3), np.float32), "dtype float32"),
    (np.zeros((8, 8, 3), np.uint16), "dtype uint16"),
    (np.zeros((2, 0, 8, 3), np.uint8), r"H, W >= 1"),
    ([[[0, 0, 0]]], "got list"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("frames, given", BAD_INPUTS, ids=[g for _, g in BAD_INPUTS])
def test_bad_frames_raise_naming_given_and_accepted(name, frames, given):
    with pytest.raises(ValueError, match=given) as info:
        enhance_classic(name, frames)
    assert "(T, H, W, 3) or (H, W, 3) uint8" in str(info.value)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda f: gic(f, gamma=0), "gamma"),
        (lambda f: gic(f, gamma=-1.0), "gamma"),
        (lambda f: gic(f, gamma=float("nan")), "gamma"),
        (lambda f: gic(f, gamma="0.5"), "gamma"),
        (lambda f: clahe(f, clip_limit=0), "clip_limit"),
        (lambda f: clahe(f, tile=0), "tile"),
        (lambda f: clahe(f, tile=2.5), "tile"),
        (lambda f: msr(f, sigmas=()), "sigmas"),
        (lambda f: msr(f, sigmas=(15, -1)), "sigmas"),
    ],
)
def test_bad_parameters_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(dark_clip(t=1))


# ------------------------------------------------------------------------------------------------
# Property: any small uint8 clip or frame comes back as uint8 of the same shape
# ------------------------------------------------------------------------------------------------

SHAPES = st.one_of(
    st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.just(3)),
    st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)),
)


@settings(max_examples=40, deadline=None)
@given(frames=hnp.arrays(np.uint8, SHAPES))
def test_any_small_uint8_input_gives_uint8_of_same_shape(frames):
    before = frames.copy()
    for name in NAMES:
        out = enhance_classic(name, frames)
        assert out.shape == frames.shape and out.dtype == np.uint8, name
    np.testing.assert_array_equal(frames, before)


# ------------------------------------------------------------------------------------------------
# Throughput (loose bound; the real numbers are in the module's report)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_throughput_at_320x240(name):
    clip = dark_clip(t=32, h=240, w=320)
    enhance_classic(name, clip[:2])
    start = time.perf_counter()
    enhance_classic(name, clip)
    fps = len(clip) / (time.perf_counter() - start)
    assert fps > 50, f"{name}: {fps:.0f} frames/s"
