"""``rt3lab demo``: the main job end to end (``run``), and the README block written from its
recorded JSON (``docs``)."""
