"""Compression: block-structured pruning, pattern pruning and the RL search of pattern sets.

Entry points: ``rt3lab compress`` / ``rt3lab evaluate`` (:mod:`lab.compression.cli`), or
:func:`lab.compression.pipeline.compress` with :func:`lab.compression.pipeline.load_lm_data`
and :class:`lab.compression.pipeline.CompressOptions`. The pieces: the pruning lifecycle
(:mod:`.sparsifier`), BP (:mod:`.block_pruning`), PP (:mod:`.pattern_pruning`), RT3's reward
(:mod:`.reward`), latency estimators (:mod:`.latency`), the controller and resumable search
(:mod:`.controller`, :mod:`.search`), joint fine-tuning (:mod:`.finetune`) and the bundle
table (:mod:`.evaluation`). Importing this package imports nothing heavy.
"""
