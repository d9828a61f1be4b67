"""Program configuration files shipped with the code, and their loader."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from shared.domain.errors import ProgramConfigError
from shared.domain.program import Program

PROGRAMS_DIR = Path(__file__).parent


def parse_program(text: str, source: str = "<string>") -> Program:
    """Validate a program document (YAML or JSON: JSON is YAML)."""
    import yaml  # noqa: PLC0415 (on the first program load, not at every function's import)

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProgramConfigError(f"{source}: not valid YAML/JSON: {exc}") from exc
    try:
        return Program.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProgramConfigError(f"{source}: {where}: {first['msg']}", field=where) from exc


@cache
def load_program(program_id: str) -> Program:
    """The program shipped as ``shared/programs/<id>.yaml`` (or ``.json``)."""
    for suffix in (".yaml", ".yml", ".json"):
        path = PROGRAMS_DIR / f"{program_id}{suffix}"
        if path.is_file():
            program = parse_program(path.read_text(encoding="utf-8"), source=path.name)
            if program.id != program_id:
                raise ProgramConfigError(f"{path.name} declares id {program.id!r}")
            return program
    raise ProgramConfigError(f"no program configuration named {program_id!r} in {PROGRAMS_DIR}")
