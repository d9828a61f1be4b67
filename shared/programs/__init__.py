"""Program configuration files shipped with the code, and their loader."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from shared.domain.errors import ProgramConfigError
from shared.domain.program import FieldError, Program

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
        named = (first.get("ctx") or {}).get("error")
        if not where and isinstance(named, FieldError):
            # A check across fields that names its field (e.g. dividend.plan).
            raise ProgramConfigError(f"{source}: {named}", field=named.field) from exc
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


@cache
def program_ids() -> tuple[str, ...]:
    """Every program shipped in ``shared/programs/`` (a file each), sorted."""
    names = {
        path.stem
        for path in PROGRAMS_DIR.iterdir()
        if path.suffix in {".yaml", ".yml", ".json"} and not path.stem.startswith(".")
    }
    return tuple(sorted(names))


def all_programs() -> tuple[Program, ...]:
    """Every shipped program, validated (adding a program is adding a file)."""
    return tuple(load_program(program_id) for program_id in program_ids())


def served_programs(program_ids: tuple[str, ...] | None) -> tuple[Program, ...]:
    """The programs a deployment serves (``PROGRAM_IDS``; None: every shipped program)."""
    if program_ids is None:
        return all_programs()
    return tuple(load_program(program_id) for program_id in program_ids)


def customer_programs(program_ids: tuple[str, ...] | None) -> tuple[Program, ...]:
    """The served programs whose members are an order's customers."""
    from shared.domain.program import MemberRole  # noqa: PLC0415

    return tuple(p for p in served_programs(program_ids) if p.members is MemberRole.CUSTOMER)


def program_for_audience(audience: str | None) -> Program | None:
    """The program whose app a token was issued to (its ``aud``), if any."""
    return next((p for p in all_programs() if audience and p.app_audience == audience), None)
