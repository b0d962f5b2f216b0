"""Facts about the machine the lab runs on, below every stage of ``lab``: the CPU's model and
vector extensions (``cpu``), the thread count for OpenMP and torch (``threads``) and the
device that training and scoring compute on (``compute``). Torch-free at import."""
