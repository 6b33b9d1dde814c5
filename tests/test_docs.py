"""The Python examples in README.md run as written (so the docs cannot drift from the code)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("index,code", list(enumerate(python_blocks(ROOT / "README.md"))))
def test_readme_python_example_runs(index, code):
    exec(compile(code, f"README.md[python block {index}]", "exec"), {})
