"""``responder replay FILE``: plan recorded alerts in process, or send them to a daemon."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from responder.drill.replay import ReplayOptions, run_replay
from responder.settings import load_settings


def replay(
    path: Path, config: Path | None, overrides: dict[str, Any], options: ReplayOptions
) -> int:
    settings = load_settings(config, **overrides)
    # Without a settings file there are no notifiers to check names against; a plan sends nothing.
    checked = dataclasses.replace(options, check_notifiers=config is not None)
    return asyncio.run(run_replay(path, settings, checked))
