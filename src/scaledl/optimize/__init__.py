"""Optimization for real time: structured pruning, quantization, distillation, slimming, search."""
