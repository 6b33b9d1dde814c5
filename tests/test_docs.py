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


def test_cli_page_lists_every_option():
    from xpnet.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = [f"{name} {opt}" for name, sub in commands.items() for action in sub._actions
               for opt in action.option_strings if opt.startswith("--") and opt != "--help" and f"`{opt}`" not in page]
    assert not missing, f"docs/cli.md does not mention: {missing}"
    assert all(f"## `xpnet {name}`" in page for name in commands)
