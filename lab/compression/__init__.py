"""Compression: block-structured pruning, pattern pruning and the RL search of pattern sets.

Entry points: ``rt3lab compress`` / ``rt3lab evaluate`` (:mod:`lab.compression.cli`), thin
layers over :func:`lab.compression.pipeline.compress_request` (a
:class:`lab.compression.options.CompressRequest`) and
:func:`lab.compression.evaluation.evaluate_bundle` (an ``Evaluation``); or
:func:`lab.compression.pipeline.compress` on a task or
:func:`lab.compression.pipeline.load_lm_data`'s corpus with
:class:`lab.compression.options.CompressOptions`.

The stages, one module (or subpackage) each, driven by :mod:`.pipeline` with the run's
:class:`lab.compression.compressor.Compressor`: the dense model (:mod:`.dense`), BP
(:mod:`.block_pruning` on the lifecycle of :mod:`.sparsifier`), PP (:mod:`.pattern_pruning`,
:mod:`.pattern_sets`), latency (:mod:`.latency`), the search (:mod:`.search`: controller,
REINFORCE, reward, calibration, supernet, other search methods), joint fine-tuning
(:mod:`.finetune`), the bundle (:mod:`.output`) and ``evaluate`` (:mod:`.evaluation`);
what makes one seed give one bundle, and what does not, in :mod:`.reproducible`.
Importing this package imports nothing heavy.
"""
