"""The definitions several packages share, each written once and torch-free.

``lab``, ``simulator``, ``reports``, ``power_meter`` and ``device_profiles`` may import
this package; it imports none of them. A name that two packages need (the cache root, the
bundle manifest, result columns, policy and baseline names, workload labels, the rules for
user files and outputs, strict JSON) lives here, in a module named after it, so that no
package keeps a second copy.
"""
