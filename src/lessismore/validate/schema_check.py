"""The contract's JSON-schema check as a Great Expectations expectation that compiles its schema once per batch.

Sits in validate/: suite.contract_expectations checks the `messages` (and `meta`) columns against the JSON schema
of their dataclass with this expectation. GX's own expect_column_values_to_match_json_schema calls
`jsonschema.validate` for every row, which checks the schema itself against its metaschema every time: that was
88% of a shard's validation (5.5 of 6.3 s for 2,000 Stack Exchange rows, measured with cProfile). This one checks
the schema once and then only the rows; a row matches or does not exactly as before, and the Data Docs render it
with GX's own renderer (the class is a subclass). Importing this module imports GX: suite.py imports it lazily.
The rows are checked by fastjsonschema, which compiles a schema to Python once (per process): 13 us a row
(JSON parsing included) against jsonschema's 93, measured on 5,000 pool rows; jsonschema had been 2.3 of the
7.2 s a 10,000-row batch took under cProfile.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import fastjsonschema
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.core.expect_column_values_to_match_json_schema import (
    ExpectColumnValuesToMatchJsonSchema,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)


class ColumnValuesMatchContractSchema(ColumnMapMetricProvider):
    """Per row: does the cell (JSON text, or the value) match `json_schema`? (text that is not JSON fails the
    metric, as in GX's)"""

    condition_metric_name = "column_values.match_contract_schema"
    condition_value_keys = ("json_schema",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: Any, json_schema: dict[str, Any], **kwargs: Any) -> Any:
        check = _compiled(json.dumps(json_schema, sort_keys=True))
        return column.map(lambda cell: _matches(check, cell))


@functools.cache
def _compiled(schema: str) -> Callable[[Any], Any]:
    """The schema (JSON text) compiled once; a schema that is not valid JSON schema raises here, not per row."""
    return fastjsonschema.compile(json.loads(schema))


def _matches(check: Callable[[Any], Any], cell: Any) -> bool:
    """Does the cell match: JSON text (a free-form dict's column), or the value itself (a list of records' items)?"""
    try:
        check(json.loads(cell) if isinstance(cell, str) else cell)
    except (fastjsonschema.JsonSchemaValueException, ValueError):  # a cell that is not JSON fails too
        return False
    return True


class ExpectColumnValuesToMatchContractSchema(ExpectColumnValuesToMatchJsonSchema):
    """expect_column_values_to_match_json_schema, with the schema checked once a batch (see the module doc)."""

    map_metric = "column_values.match_contract_schema"
