"""The Python examples in README.md and docs/ run as written, and docs/cli.md covers every option."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(path.relative_to(ROOT), i, code) for path in DOCS for i, code in enumerate(python_blocks(path))]


@pytest.mark.parametrize("path,index,code", BLOCKS, ids=[f"{p}[{i}]" for p, i, _ in BLOCKS])
def test_python_examples_in_the_docs_run(path, index, code):
    if "sklearn" in code:
        pytest.importorskip("sklearn")
    exec(compile(code, f"{path}[python block {index}]", "exec"), {})


def test_cli_page_lists_every_option():
    from xpnet.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = [f"{name} {opt}" for name, sub in commands.items() for action in sub._actions
               for opt in action.option_strings if opt.startswith("--") and opt != "--help" and f"`{opt}`" not in page]
    assert not missing, f"docs/cli.md does not mention: {missing}"
    assert all(f"## `xpnet {name}`" in page for name in commands)
