"""monosemantic: make the units of neural networks readable.

Stages, left to right (a stage imports only stages to its left)::

    sources -> store -> sae -> metrics / steer / compare / knowledge / naming -> report -> experiments -> cli

``monosemantic.sae.SAE``, ``monosemantic.store.ActivationStore`` and ``monosemantic.experiments.<command>`` are
the entry points; importing this package itself loads nothing heavy.
"""

__version__ = "0.1.0"
