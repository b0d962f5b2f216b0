"""The search of pattern sets, one module each: what a child is and the RNN-cell controller
that samples it (``controller``), REINFORCE with its resumable state (``reinforce``), the
other search methods it is compared with (``methods``: random, evolutionary), RT3's reward
(``reward``), the deadlines and the reward's normalisation (``calibration``), the level
combinations worth sampling (``feasible``) and the supernet that scores children
(``supernet``). Importing this package imports nothing heavy."""
