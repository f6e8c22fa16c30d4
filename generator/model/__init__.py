"""The model stage: cross-file checks, layer merging, derived names and the resolved model
every target reads. No I/O beyond the package's own built-in defaults.
"""
