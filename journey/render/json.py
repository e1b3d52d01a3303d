"""Report objects as JSON: the stable, machine-readable form (`--json`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any

from journey.periods import Period


def to_jsonable(value: Any) -> Any:
    """Dataclasses become objects, times ISO 8601 strings, tuples lists."""
    if isinstance(value, Period):
        return {
            "start": value.start.isoformat(),
            "end": value.end.isoformat(),
            "label": value.label,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def render_json(report: Any) -> str:
    from journey.render.sentences import definitions

    head: dict[str, Any] = {"report": type(report).__name__}
    if meaning := definitions(report):
        head["definitions"] = meaning
    return json.dumps({**head, **to_jsonable(report)}, indent=2, ensure_ascii=False)
