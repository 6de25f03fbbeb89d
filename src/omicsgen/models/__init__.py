"""Torch networks (one file per method), the shared training loop and checkpoint helpers.

Everything that imports torch lives in this package, so that ``kedro`` CLI commands and
kedro-viz do not pay for importing it.
"""
