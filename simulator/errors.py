"""The simulator's bad-input error."""


class SimulatorInputError(ValueError):
    """Bad input to the simulator; the message names the field or file and what was expected."""
