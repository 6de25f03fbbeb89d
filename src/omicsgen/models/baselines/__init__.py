"""Baselines the methods are compared with that train or fit something (they live with the models)."""
