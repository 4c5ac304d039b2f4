"""Static checks of the Dockerfile; no Docker engine is needed."""

from __future__ import annotations

import json
import re

from tests.deploy.manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
REQUIRED_LABELS = {
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.licenses",
}


def _instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, with continuation lines joined and comments cut."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _global_args() -> dict[str, str]:
    args = {}
    for keyword, rest in _instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def _base_images() -> list[str]:
    args = _global_args()
    images = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _labels() -> dict[str, str]:
    labels = {}
    for keyword, rest in _final_stage():
        if keyword == "LABEL":
            for name, value in re.findall(r'([\w.\-]+)="([^"]*)"', rest):
                labels[name] = value
    return labels


def test_multi_stage() -> None:
    assert len(_base_images()) >= 2


def test_base_images_pinned() -> None:
    for image in _base_images():
        name, _, digest = image.partition("@")
        tag = name.rpartition(":")[2] if ":" in name else ""
        assert tag or digest, f"base image {image!r} is not pinned"
        assert "latest" != tag
        # A full patch version, such as 3.11.11, not a moving 3.11 or 3.
        if not digest:
            message = f"tag {tag!r} of {image!r} is not a patch version"
            assert re.match(r"\d+\.\d+\.\d+", tag), message


def test_final_user_nonroot() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert ["65532:65532"] == users


def test_user_after_last_run() -> None:
    final = _final_stage()
    keywords = [keyword for keyword, _ in final]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:]


def test_entrypoint_exec_form() -> None:
    (entrypoint,) = [rest for keyword, rest in _final_stage() if keyword == "ENTRYPOINT"]
    assert ["responder"] == json.loads(entrypoint)


def test_cmd_exec_form() -> None:
    (cmd,) = [rest for keyword, rest in _final_stage() if keyword == "CMD"]
    assert "serve" == json.loads(cmd)[0]


def test_final_stage_no_run() -> None:
    # The final stage needs no shell: it only copies what the builder made.
    assert [] == [rest for keyword, rest in _final_stage() if keyword == "RUN"]


def test_expose_port() -> None:
    assert ["2804"] == [rest for keyword, rest in _final_stage() if keyword == "EXPOSE"]


def test_no_bytecode_writes() -> None:
    env = " ".join(rest for keyword, rest in _final_stage() if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_oci_labels() -> None:
    assert REQUIRED_LABELS <= set(_labels())


def test_dockerignore_excludes_venv() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" == next(line for line in lines if line and not line.startswith("#"))
    assert "!.venv" not in lines
