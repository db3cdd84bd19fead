"""Settings of `torch._dynamo.config` that ferrodyn honours where it has the feature.

Read at the point of use, and only when `torch._dynamo.config` is already loaded (it is
never imported just to ask), so `torch._dynamo.config.patch(...)` (context manager or
decorator) and plain assignments act on ferrodyn as they act on torch.compile:

* `recompile_limit` (alias `cache_size_limit`): compiles per code object; used when it was
  changed from torch's default and ferrodyn's own `config.recompile_limit` was not.
* `suppress_errors`: read by `ferrodyn.config.suppress_errors_enabled()`.

Flags ferrodyn has no feature for (`capture_scalar_outputs`, `automatic_dynamic_shapes`,
`error_on_recompile`, ...) are left alone.
"""

from __future__ import annotations

import sys

_DYNAMO_CONFIG = "torch._dynamo.config"
# ferrodyn.config.recompile_limit's default (the same as torch's).
_OWN_DEFAULT_LIMIT = 8


def _changed(cfg: object, name: str) -> bool:
    is_default = getattr(cfg, "_is_default", None)
    if is_default is None:
        return False
    try:
        return not is_default(name)
    except Exception:  # noqa: BLE001 - a private torch helper; unknown name or new API
        return False


def recompile_limit(own: int) -> int:
    """The recompile limit for a function compiled with ferrodyn's limit `own`."""
    cfg = sys.modules.get(_DYNAMO_CONFIG)
    if cfg is None or own != _OWN_DEFAULT_LIMIT or not _changed(cfg, "recompile_limit"):
        return own
    value = getattr(cfg, "recompile_limit", own)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return own
    return value
