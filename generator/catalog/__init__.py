"""The catalog stage: read the input files from disk, validate each against its spec, and
export their JSON Schemas. The first stage of the pipeline; see docs/architecture.md.
"""
