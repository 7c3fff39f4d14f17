"""The file-tail source's options (`sources.files`, docs/file-source.md).

Declared here, not in options.py, so the source owns its settings; config.py
holds only the `sources` field and calls `check_files` for what a struct
cannot say (a multi-line rule name that must exist).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from logcaster.exceptions import ConfigError
from logcaster.options import MultilineConfig, PositiveFloat, Section

Glob = Annotated[str, msgspec.Meta(min_length=1)]
# Services name events in queries and metrics: a short word, not a sentence.
Service = Annotated[str, msgspec.Meta(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.\-]+$")]


class FileInput(Section, frozen=True):
    """One group of files: the globs that find them and how their lines are read."""

    paths: Annotated[list[Glob], msgspec.Meta(min_length=1)]
    service: Service
    exclude: list[Glob] = []  # fnmatch patterns on the full path, checked after `paths`
    # true: grouped as multiline.* says (built-in rules and every rule for all
    # listeners); false: one event per line; a name: the built-in rules and that
    # multiline.rules entry.
    multiline: bool | str = True


class FilesConfig(Section, frozen=True):
    """The file-tail source: off while `inputs` is empty."""

    inputs: list[FileInput] = []
    # Files present at the very first start (no saved position): read them whole,
    # or only what is appended from now on. Files found later are always read whole.
    read_from: Literal["beginning", "end"] = "beginning"
    poll_interval: PositiveFloat = 1.0  # seconds between glob scans (and rotation checks)
    # A file renamed away or deleted is still read this long after its last byte:
    # the application writes to it until it reopens its log (as Fluent Bit's rotate_wait).
    rotate_wait: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    max_open_files: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 1024
    read_bytes: Annotated[int, msgspec.Meta(ge=4096, le=16 * 1024 * 1024)] = 1024 * 1024


class SourcesConfig(Section, frozen=True):
    """Sources that are not listeners."""

    files: FilesConfig = msgspec.field(default_factory=FilesConfig)


def check_files(files: FilesConfig, multiline: MultilineConfig) -> None:
    """What the structs cannot check: a named multi-line rule must exist."""
    names = {rule.name for rule in multiline.rules}
    for i, entry in enumerate(files.inputs):
        rule = entry.multiline
        if isinstance(rule, str) and rule not in names:
            known = ", ".join(sorted(names)) or "none defined"
            raise ConfigError(
                f"sources.files.inputs.{i}.multiline",
                f"{rule!r} is not a multiline.rules name (known: {known}); or true / false",
            )
