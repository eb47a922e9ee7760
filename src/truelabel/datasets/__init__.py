"""Synthetic data with known truth: label noise for tests, the demo and benchmarks."""

from ._noise import NOISE_TYPES, make_noisy_labels, make_noisy_multilabels

__all__ = ["NOISE_TYPES", "make_noisy_labels", "make_noisy_multilabels"]
