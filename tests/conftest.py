"""Test-wide settings: hypothesis without per-example deadlines (CI machines vary in speed)."""

from hypothesis import settings

settings.register_profile("irperf", deadline=None)
settings.load_profile("irperf")
