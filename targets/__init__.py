"""Hardware targets: the Target record and the loader for its TOML files."""

from targets.loader import list_targets, load_target, target_names
from targets.target import ComputeRate, Link, Target

__all__ = ["ComputeRate", "Link", "Target", "list_targets", "load_target", "target_names"]
