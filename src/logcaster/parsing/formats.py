"""Facts about log formats that more than one reader needs, defined once."""

from __future__ import annotations

# Syslog severity (PRI & 7) -> level: emerg, alert and crit are FATAL, err ERROR,
# warning WARN, notice and info INFO, debug DEBUG (RFC 5424 §6.2.1).
SYSLOG_SEVERITY_LEVELS: tuple[str, ...] = (
    "FATAL",
    "FATAL",
    "FATAL",
    "ERROR",
    "WARN",
    "INFO",
    "INFO",
    "DEBUG",
)

# English month abbreviations, as syslog's BSD header and access logs write them.
MONTH_NAMES: tuple[str, ...] = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
