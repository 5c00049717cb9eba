"""Typed exceptions: every user-facing failure is an IrperfError, printed by the CLI as one line."""


class IrperfError(Exception):
    """Base of every error irperf raises on bad input or an unsupported request."""


class ConfigError(IrperfError):
    """A model configuration is missing, malformed or inconsistent."""


class TargetError(IrperfError):
    """A hardware target is unknown, malformed or inconsistent."""


class TypeInferenceError(IrperfError):
    """An op was given operands whose types it cannot accept."""


class VerifyError(IrperfError):
    """A graph breaks a structural rule; the message names the node and the rule."""


class PassError(IrperfError):
    """A pass failed, has no rule for an op, or was configured wrongly."""


class UnknownNameError(IrperfError):
    """A model, target or pass name that is not registered."""


class PluginError(IrperfError):
    """A user plugin (``--load FILE``, an installed entry point) failed to load or misbehaved."""


class OutputError(IrperfError):
    """Output could not be written (a full disk, a missing folder) or would take too long."""


class ProfileError(IrperfError):
    """A device profile (tt-metal's ops_perf_results CSV) is missing, malformed or of another
    tool; the message names the row and the column."""
