"""Issue 12, "safe to put on the public internet", library side: each test names the item it covers."""

from __future__ import annotations

import json

import pytest

from dtcm.config import DTCMConfig


# --------------------------------------------------------------------------------------------- item 16
@pytest.mark.parametrize(
    "change, field",
    [
        ({"curve_iterations": 1e8}, "curve_iterations"),
        ({"curve_iterations": 100_000}, "curve_iterations"),
        ({"std": [0, 0, 0]}, "std"),
        ({"mean": [0.4, float("nan"), 0.4]}, "mean"),
        ({"class_names": "DrinkJumpPi", "num_classes": 11}, "class_names"),
        ({"class_names": [1, 2], "num_classes": 2}, "class_names"),
        ({"clip_len": 0}, "clip_len"),
        ({"clip_len": 16.5}, "clip_len"),
        ({"crop_size": 200, "short_side": 128}, "crop_size"),
        ({"pixel_scale": 0}, "pixel_scale"),
        ({"width_mult": -1}, "width_mult"),
        ({"alpha": "big"}, "alpha"),
        ({"k": True}, "k"),
        ({"backbone": 3}, "backbone"),
        ({"extra": []}, "extra"),
    ],
)
def test_config_json_is_range_checked_naming_the_field(tmp_path, change, field):
    data = {**DTCMConfig().to_dict(), **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=field) as info:
        DTCMConfig.load(path)
    assert "\n" not in str(info.value)


def test_shipped_configs_still_load():
    from dtcm.hub import list_variants

    for entry in list_variants().values():
        DTCMConfig.load(f"{entry['path']}/config.json")
