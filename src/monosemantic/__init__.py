"""monosemantic: make the units of neural networks readable.

Stages, left to right (a stage imports only stages to its left)::

    sources -> store -> sae -> metrics / steer / compare -> report
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # PEP 562: `monosemantic.SAE` without importing torch when the package is imported
    if name == "SAE":
        from monosemantic.sae import SAE

        return SAE
    raise AttributeError(f"module 'monosemantic' has no attribute {name!r}")
