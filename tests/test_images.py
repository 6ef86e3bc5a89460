"""Photos in and out: dtcm.images and ``dtcm enhance`` on jpg, png, bmp and webp."""

import numpy as np
import pytest

from dtcm.cli import main
from dtcm.images import read_image, write_image
from dtcm.model import create_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny"
    create_model("dtcm_tiny_test").save_pretrained(path)
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp"])
def test_enhance_a_photo_keeps_its_size(model_dir, tmp_path, suffix, capsys):
    img = np.random.default_rng(0).integers(0, 40, (37, 53, 3), dtype=np.uint8)
    src = write_image(tmp_path / f"in{suffix}", img)
    dst = tmp_path / f"out{suffix}"
    assert main(["enhance", str(src), str(dst), "--model", str(model_dir)]) == 0
    out = read_image(dst)
    assert out.shape == img.shape and "37" in capsys.readouterr().out
    if suffix in (".png", ".bmp"):  # lossless: the photo round-trips exactly
        assert np.array_equal(read_image(src), img)


def test_photo_to_video_name_is_a_one_line_error(model_dir, tmp_path, capsys):
    src = write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["enhance", str(src), str(tmp_path / "out.mp4"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a photo in gives a photo out" in err and "\n" not in err


def test_bad_images_are_named(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="could not be decoded"):
        read_image(tmp_path / "x.png")
    with pytest.raises(ValueError, match="accepted: .jpg"):
        read_image(tmp_path / "x.gif")
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "y.png", np.zeros((4, 4), np.float32))


def test_published_name_needs_the_environment_variable(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DTCM_ZERODCE_PUBLISHED", raising=False)
    src = write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["enhance", str(src), str(tmp_path / "o.png"), "--model", "zerodce-published"]) == 2
    assert "DTCM_ZERODCE_PUBLISHED" in capsys.readouterr().err
    monkeypatch.setenv("DTCM_ZERODCE_PUBLISHED", str(model_dir))
    assert main(["enhance", str(src), str(tmp_path / "o.png"), "--model", "zerodce-published"]) == 0
