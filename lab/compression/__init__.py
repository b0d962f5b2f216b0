"""Compression: block-structured pruning, pattern pruning and the RL search of pattern sets."""
