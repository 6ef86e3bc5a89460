"""Real-photo training data (dtcm.data.photos) and the local colour-constancy term."""

import numpy as np
import pytest
import torch

from dtcm.data import photos
from dtcm.losses import local_color_loss


def _loop_local_color(y, x, patch):
    total, n = 0.0, 0
    for i in range(y.shape[0]):
        for a in range(0, y.shape[2] // patch * patch, patch):
            for b in range(0, y.shape[3] // patch * patch, patch):
                jy = y[i, :, a : a + patch, b : b + patch].mean(dim=(1, 2)) + 1e-3
                jx = x[i, :, a : a + patch, b : b + patch].mean(dim=(1, 2)) + 1e-3
                total += ((jy / jy.sum() - jx / jx.sum()) ** 2).sum().item()
                n += 1
    return total / n


def test_local_color_loss_matches_a_loop_and_ignores_brightening():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 96, generator=g) * 0.3
    y = torch.rand(2, 3, 64, 96, generator=g)
    assert local_color_loss(y, x, patch=32).item() == pytest.approx(_loop_local_color(y, x, 32), rel=1e-5)
    assert local_color_loss(x * 2, x).item() < 1e-6  # brighter, same colour
    tinted = x * torch.tensor([1.0, 0.7, 1.3]).view(1, 3, 1, 1)  # violet shadows
    assert local_color_loss(tinted, x).item() > 1e-3
    clip = x.view(2, 3, 1, 64, 96)  # (B, 3, T, H, W) works too
    assert local_color_loss(clip * 2, clip).item() < 1e-6
    with pytest.raises(ValueError, match="at least 32x32"):
        local_color_loss(x[..., :16, :16], x[..., :16, :16])


def test_split_is_deterministic_and_holds_sice_scenes_together(tmp_path):
    paths = [tmp_path / "SICE_part1" / f"{i}.jpg" for i in range(1, 1001)]
    paths += [tmp_path / "welllit_Set14" / f"img_{i:03d}.png" for i in range(200)]
    train, held = photos.split_photos(paths)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(paths)
    assert 0.03 < len(held) / len(paths) < 0.2
    assert photos.split_photos(paths) == (train, held)

    def blocks(ps):
        return {int(p.stem) // photos.SICE_BLOCK for p in ps if p.parent.name == "SICE_part1"}

    assert blocks(held) and blocks(held).isdisjoint(blocks(train))  # a scene sequence is never split


def test_pan_zoom_clip_moves_smoothly_and_film_darkens():
    rng = np.random.default_rng(0)
    img = (np.indices((120, 160)).sum(0) % 256).astype(np.uint8)[..., None].repeat(3, -1)
    clip = photos.pan_zoom_clip(img, 4, 64, rng)
    assert clip.shape == (4, 64, 64, 3) and clip.dtype == np.uint8
    steps = [np.abs(clip[t + 1].astype(int) - clip[t]).mean() for t in range(3)]
    assert 0 < max(steps) < 60  # it moves, but it is the same scene frame to frame
    dark = photos.film(clip, rng, exposure=0.02)
    assert dark.mean() < clip.mean() / 2
    crop = photos.photo_crop(img[:50, :50], 64, rng)  # smaller than the crop: upscaled first
    assert crop.shape == (64, 64, 3)


def test_list_photos_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        photos.list_photos(tmp_path / "none")
    with pytest.raises(ValueError, match="holds no photos"):
        photos.list_photos(tmp_path)
