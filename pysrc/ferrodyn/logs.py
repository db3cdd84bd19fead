"""Placeholder until the logging module lands (FERRODYN_LOGS)."""

from __future__ import annotations

import logging

_log = logging.getLogger("ferrodyn")


def enabled(artifact: str) -> bool:
    return False


def log(artifact: str, msg: str, *args: object) -> None:
    _log.getChild(artifact).debug(msg, *args)
