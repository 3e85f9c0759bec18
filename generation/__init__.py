"""The stylevault generation plugin: retrieval-augmented diffusion over a cleared index.

It registers itself through the entry-point group "stylevault.generators"; `governance` never
imports it.
"""
