"""Secrets in configuration: a literal, an environment variable, or a file such as a Secret volume.

A secret is resolved once, when the configuration is loaded, and kept as a ``SecretStr`` so that it
prints as ``**********`` in logs, errors and ``repr``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


def resolve_secret(value: Any) -> SecretStr:
    """Resolve ``"literal"``, ``{"env": NAME}`` or ``{"file": PATH}`` to a ``SecretStr``."""
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, where),) = value.items()
        if kind == "env":
            found = os.environ.get(str(where))
            if found is None:
                raise ValueError(
                    f"environment variable {where!r} is not set: set it, or give the secret "
                    "another way ({file: PATH} or a literal)"
                )
            return SecretStr(found)
        if kind == "file":
            path = Path(str(where))
            try:
                # Secret volumes and editors often end the file with a newline that is not secret.
                return SecretStr(path.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as error:
                raise ValueError(
                    f"cannot read secret file {str(path)!r}: {error.strerror}"
                ) from None
    raise ValueError(
        "invalid secret: expected a string, {env: VARIABLE_NAME} or {file: /path/to/file}"
    )


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
