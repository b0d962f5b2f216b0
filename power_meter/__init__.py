"""Power meters: drivers over pyserial, emulators, the recorder and energy windows (no torch)."""
