"""DarkActions-synth: people doing ARID's 11 actions, filmed in the dark (SPEC B3).

v2 (the default) renders people with volume, clothes and their own manner of moving over painted night
scenes (or real footage and photographs when a folder is given), with lights, camera moves, motion blur,
distractors, a low-light sensor and compression; each element is a switch of :class:`RenderOptions`.
v1 (``version=1``) renders the capsule figures of the first release, frame for frame.

Files: ``body.py`` (skeleton, poses), ``actions.py`` (the 11 actions, actor style), ``figure.py`` (v2's
people), ``scenes.py`` / ``backgrounds.py`` (what is behind them), ``effects.py`` (lights, camera, blur,
objects), ``draw.py`` (camera, v1 painter), ``render.py`` / ``render_v1.py`` (one clip), ``lowlight.py``
(the dark camera), ``dataset.py`` (the dataset writer and CLI).
"""

from dtcm.synthetic.actions import ACTIONS, action_name
from dtcm.synthetic.backgrounds import FOOTAGE_ENV, footage_dir, resolve_backgrounds
from dtcm.synthetic.dataset import contact_sheet, make_synthetic, split_indices
from dtcm.synthetic.draw import SS
from dtcm.synthetic.lowlight import TARGET_DV, compress, darken
from dtcm.synthetic.render import FPS, NUM_FRAMES, SIZE, VERSIONS, RenderOptions, render_clip
from dtcm.synthetic.scenes import SCENE_KINDS, procedural_scene

__all__ = [
    "ACTIONS",
    "FOOTAGE_ENV",
    "FPS",
    "NUM_FRAMES",
    "SCENE_KINDS",
    "SIZE",
    "SS",
    "TARGET_DV",
    "VERSIONS",
    "RenderOptions",
    "action_name",
    "compress",
    "contact_sheet",
    "darken",
    "footage_dir",
    "make_synthetic",
    "procedural_scene",
    "render_clip",
    "resolve_backgrounds",
    "split_indices",
]
