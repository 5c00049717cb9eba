"""Units, each stated once: every module converts with these."""

MS_PER_S = 1000.0
"""Milliseconds in a second."""
US_PER_S = 1e6
"""Microseconds in a second."""
GB = 10**9
"""Bytes in a (decimal) gigabyte, as datasheets and the seed post count them."""
