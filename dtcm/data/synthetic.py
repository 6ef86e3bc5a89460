"""DarkActions-synth's old home: a re-export of :mod:`dtcm.synthetic`, so existing imports keep working.

Example:
    >>> from dtcm.data.synthetic import darken, make_synthetic, render_clip
"""

from dtcm.synthetic import *  # noqa: F403
from dtcm.synthetic import __all__  # noqa: F401
from dtcm.synthetic.actions import _action_name  # noqa: F401
from dtcm.synthetic.lowlight import _darken  # noqa: F401
