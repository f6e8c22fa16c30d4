"""The output stage: run the targets (serially or in forked workers), then compare, write and
prune the rendered tree; the check cache and the atomic-write helper.
"""
