"""The report's sections for stand-alone results, one module each.

A section module declares ``KIND`` (the :class:`~monosemantic.results.ResultKind` its result file is written and
found by) and the function that shows it. The experiment that writes the file imports ``KIND`` from here.
"""
