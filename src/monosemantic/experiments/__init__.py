"""The experiments: one module per command, each of the form described in :mod:`monosemantic.experiment` (a frozen
config checked in ``__post_init__``, ``run(cfg)`` returning a typed result, the result's ``write`` and ``summary``,
and the ``COMMAND`` the command line is generated from).

This is the one place where the project's results are written to files; the stage packages below it (``sources``,
``store``, ``sae``, ``metrics``, ``steer``, ``compare``, ``knowledge``, ``naming``, ``report``) hold the science as
functions and write nothing.
"""
