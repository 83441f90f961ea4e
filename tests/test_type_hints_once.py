"""dlt's validation reads a class's type hints once (`dlt_compat.type_hints_read_once`), and still
refuses what it refused."""

from typing import Any, TypedDict

import pytest
from dlt.common import validation
from dlt.common.exceptions import DictValidationException
from dlt.common.schema.typing import TTableSchema
from kore_sessions.source.dlt_compat import hints_read_once, type_hints_read_once

pytestmark = pytest.mark.unit

TABLE = {
    "name": "sessions",
    "write_disposition": "merge",
    "resource": "sessions",
    "columns": {"session_id": {"name": "session_id", "data_type": "text", "nullable": False}},
}


class Shape(TypedDict):
    """A class to read the hints of."""

    name: str


def counted_reader() -> tuple[list[tuple[Any, ...]], Any]:
    """A `get_type_hints` that records each call."""
    calls: list[tuple[Any, ...]] = []

    def read(
        obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        calls.append((obj, globalns, localns, include_extras))
        return {"name": str, "extras": include_extras}

    return calls, read


def test_a_class_is_read_once_for_each_namespace_and_extras() -> None:
    calls, read = counted_reader()
    once = hints_read_once(read)
    namespace = {"Shape": Shape}
    first = once(Shape, globalns=namespace)
    first["name"] = int  # a caller changing its copy changes nothing kept
    assert once(Shape, globalns=namespace) == {"name": str, "extras": False}
    assert once(Shape, globalns=namespace, include_extras=True)["extras"] is True
    once(Shape)
    once(Shape)
    assert len(calls) == 3


def test_a_local_namespace_or_an_object_not_a_class_is_read_every_time() -> None:
    calls, read = counted_reader()
    once = hints_read_once(read)
    for _ in range(2):
        once(Shape, localns={"x": 1})
        once(counted_reader)
    assert len(calls) == 4


def test_dlt_validation_is_patched_once_and_still_refuses_a_bad_table() -> None:
    type_hints_read_once()
    type_hints_read_once()  # idempotent: one wrapper, not a wrapper of a wrapper
    patched = validation.get_type_hints
    assert getattr(patched, "_kore_sessions_hints_once", False)
    for _ in range(2):
        validation.validate_dict_ignoring_xkeys(spec=TTableSchema, doc=TABLE, path="table")
        with pytest.raises(DictValidationException, match="write_disposition"):
            validation.validate_dict_ignoring_xkeys(
                spec=TTableSchema, doc={**TABLE, "write_disposition": "upsert-ish"}, path="table"
            )
        with pytest.raises(DictValidationException, match="nullable"):
            bad_column = {"session_id": {"name": "session_id", "data_type": "text", "nullable": "no"}}
            validation.validate_dict_ignoring_xkeys(
                spec=TTableSchema, doc={**TABLE, "columns": bad_column}, path="t"
            )
    assert validation.get_type_hints is patched
