"""``rt3lab bench ...`` for the lab's stages: the runtime against its anchors (``runtime``),
the standalone runner (``runner``), the search (``search``), training (``train``) and the
CLI's start-up (``startup``). Each module exposes ``app`` with one command named after what
it measures; speed claims live here, never in unit tests."""
