"""DTCM Studio: dark video action recognition with a jointly trained light enhancer.

Example:
    >>> import dtcm
    >>> model = dtcm.create_model("dtcm_tiny_test")
"""

from dtcm.config import DTCMConfig

__all__ = ["DTCMConfig", "DTCM", "create_model", "import_hara"]
__version__ = "0.1.0"


def __getattr__(name):
    # torch-heavy names load lazily so that `import dtcm` stays light for the UIs and the CLI.
    if name in ("DTCM", "create_model", "import_hara"):
        from dtcm import model

        return getattr(model, name)
    raise AttributeError(f"module 'dtcm' has no attribute {name!r}")
