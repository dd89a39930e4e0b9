"""The live table: the element st.table makes of the same rows, built without pandas once its shape is known."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo.page import live_table

TIMEOUT_S = 60


def draw_tables() -> None:
    """The same rows drawn by st.table from a dict and by live_table, for each shape of rows (an AppTest script)."""
    import streamlit as st

    from bayesdemo.page.live_table import live_table

    shapes = [
        {"Fit": ["Bayes by Backprop", "noise injection"], "Step": ["1,000 / 4,000", "0 / 4,000"], "KL": ["0.01", "—"]},
        {"Fit": ["Bayes by Backprop"], "Status": [""]},  # one row, an empty cell
        {"Fit": [], "Step": []},  # no rows
        {"Fit": ["a", "b"], "Steps/s": [1.5, 2.0]},  # cells that are not text: drawn as st.table draws them
    ]
    for rows in shapes:
        for _ in range(2):  # the second time from the schema cached by the first
            st.table(rows, border="horizontal")
            live_table(rows)


def test_a_live_table_is_the_element_st_table_makes_of_the_same_rows():
    # The reference is Streamlit's own st.table of the dict (through pandas): every field of the element, the Arrow
    # bytes included, must be equal, so the page shows and announces the same table.
    page = AppTest.from_function(draw_tables, default_timeout=TIMEOUT_S).run()
    tables = page.table
    assert len(tables) == 16
    for index in range(0, 16, 2):
        assert tables[index + 1].proto == tables[index].proto, index
    assert list(tables[0].value["Fit"]) == ["Bayes by Backprop", "noise injection"]


def test_a_live_table_is_built_without_pandas_once_its_shape_is_known():
    rows = {name: [f"{name} {row}" for row in range(4)] for name in ("Fit", "Step", "Slope mean", "Status")}
    assert isinstance(live_table.table_data(rows), pa.Table)
    calls = []
    original = pd.DataFrame

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pd, "DataFrame", counted)
        live_table.table_data({name: [cell + "!" for cell in cells] for name, cells in rows.items()})
    assert calls == []
