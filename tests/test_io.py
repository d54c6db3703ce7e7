import json

from hypothesis import given, settings
from hypothesis import strategies as st

from edgenas.io import json_text, write_json

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                      max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_written_json_reads_back_as_written(value):
    assert json.loads(json_text(value)) == value  # strings holding brackets, commas, quotes and newlines included


def test_lists_of_scalars_take_one_line(tmp_path):
    data = {"ks": [3, 5, 7], "names": ["a, b", "[1,\n2]"], "rows": [[1, 2], [3]], "empty": [], "nested": {"r": [32]}}
    text = write_json(tmp_path / "a.json", data).read_text()
    assert '"ks": [3, 5, 7],' in text and '"names": ["a, b", "[1,\\n2]"],' in text and '"r": [32]' in text
    assert "    [1, 2],\n    [3]\n" in text and json.loads(text) == data
