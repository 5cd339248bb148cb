"""benchmarks.scale refuses to build a database without input equipment: a copy densified
for serving (``benchmarks.explain densify`` without ``--inputs``) would have its layers
replaced by an empty build."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from benchmarks.scale import _refuse_without_inputs

pytestmark = pytest.mark.postgis


def test_a_database_without_input_equipment_is_not_built(postgis_db_url: str) -> None:
    with pytest.raises(SystemExit, match="holds no input equipment"):
        _refuse_without_inputs(postgis_db_url)


def test_a_database_with_input_equipment_is(postgis_db_url: str) -> None:
    engine = create_engine(postgis_db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO equipment (registration_code) VALUES (:code)"),
                     {"code": "31104101002026000001"})
    engine.dispose()
    _refuse_without_inputs(postgis_db_url)  # no exit
