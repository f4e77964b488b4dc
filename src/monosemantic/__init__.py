"""monosemantic: make the units of neural networks readable.

Stages, left to right (a stage imports only stages to its left)::

    sources -> store -> sae -> metrics / steer / compare -> report
"""

__version__ = "0.1.0"
