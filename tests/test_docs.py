"""The Python examples in README.md and docs/ run as written, and docs/cli.md covers every option."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(path.relative_to(ROOT), i, code) for path in DOCS for i, code in enumerate(python_blocks(path))]


NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def printed_as_said(expected: str, line: str) -> bool:
    """Whether ``line`` is what a ``# prints:`` comment says: the same text, ``…`` for anything (what
    depends on the machine, a speed), each number within 1 % (or 0.005) of the one written."""
    parts = re.split(f"({NUMBER}|…)", expected.strip())
    pattern = "".join("(.*?)" if p == "…" else f"({NUMBER})" if re.fullmatch(NUMBER, p) else re.escape(p)
                      for p in parts if p)
    found = re.fullmatch(pattern, line.strip())
    if not found:
        return False
    numbers = [p for p in parts if p and p != "…" and re.fullmatch(NUMBER, p)]
    got = [g for p, g in zip([p for p in parts if p and (p == "…" or re.fullmatch(NUMBER, p))], found.groups())
           if p != "…"]
    return all(abs(float(g) - float(n)) <= max(0.01 * abs(float(n)), 0.005) for g, n in zip(got, numbers))


@pytest.mark.parametrize("path,index,code", BLOCKS, ids=[f"{p}[{i}]" for p, i, _ in BLOCKS])
def test_python_examples_in_the_docs_run(path, index, code):
    """Each block runs as written, and prints what its ``# prints:`` comments say, in that order."""
    import contextlib
    import io

    if "sklearn" in code:
        pytest.importorskip("sklearn")
    environment = dict(os.environ)  # a block may set variables (SCIPY_ARRAY_API) for itself only
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{path}[python block {index}]", "exec"), {})
    finally:
        os.environ.clear()
        os.environ.update(environment)
    lines = out.getvalue().splitlines()
    for expected in re.findall(r"# prints: (.*)$", code, flags=re.M):
        while lines and not printed_as_said(expected, lines[0]):
            lines.pop(0)
        assert lines, f"{path}[python block {index}] does not print {expected!r}:\n{out.getvalue()}"
        lines.pop(0)


def test_the_printed_values_check_fails_when_a_value_is_off():
    assert printed_as_said("0.599 …", "0.5991 210201.7") and printed_as_said("[7 6 1] x", "[7 6 1] x")
    assert not printed_as_said("0.599 …", "0.65 210201.7") and not printed_as_said("| 0.1 | no |", "| 0.1 | yes |")
    assert printed_as_said("[0.859, None]", "[0.8589, None]") and not printed_as_said("step 16", "step 18")


def test_cli_page_lists_every_option():
    """Each command's section of docs/cli.md names every option its --help lists, and every command has a
    section."""
    from xpnet.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text()
    parts = re.split(r"\n## `xpnet (\w+)`", page)
    sections = {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(sections) == set(commands)
    missing = [f"{name} {opt}" for name, sub in commands.items() for action in sub._actions
               for opt in action.option_strings if opt.startswith("--") and opt != "--help"
               and f"`{opt}`" not in sections[name]]
    assert not missing, f"docs/cli.md does not mention, in the command's section: {missing}"
    assert "`xpnet --version`" in page


def test_help_says_what_each_command_does_with_an_example_that_parses(capsys):
    """``xpnet --help`` reads as plain text (no markup), ``--version`` answers, and each command's --help
    has a one-line description and an example that the parser takes."""
    from xpnet import __version__
    from xpnet.cli import build_parser, main

    parser = build_parser()
    assert "``" not in parser.format_help()
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"xpnet {__version__}\n"
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        text = sub.format_help()
        assert sub.description and sub.description.endswith(".") and "``" not in text, name
        example = text.split("example:\n")[1].strip()
        assert example.startswith(f"xpnet {name} ")
        assert parser.parse_args(example.split()[1:]).command == name


# -- the shell commands in the docs ------------------------------------------------------------------
#: Placeholders the docs use in command lines, and the value a test substitutes for each.
PLACEHOLDERS = {" --seed S": " --seed 0", " --lr LR": " --lr 0.1", " --digits A,B": " --digits 7,9"}


def shell_commands(path):
    """``(command, exit status)`` for each line of the ```bash blocks: continuations joined, [--optional]
    options and comments dropped; a comment saying "exit status N" gives the status expected."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            status = re.search(r"#.*exit status (\d+)", line)
            line = re.sub(r"\s+#.*$", "", line)
            line = re.sub(r"\s*\[--[^\]]*\]", "", line).strip()  # [--json]: an option to leave out
            for placeholder, value in PLACEHOLDERS.items():
                line = line.replace(placeholder, value)
            if line:
                commands.append((line, int(status.group(1)) if status else 0))
    return commands


COMMANDS = [(path.relative_to(ROOT), c, status) for path in DOCS for c, status in shell_commands(path)]
XPNET_COMMANDS = [(p, c) for p, c, _ in COMMANDS if c.startswith("xpnet ")]


@pytest.mark.parametrize("path,command", XPNET_COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in XPNET_COMMANDS])
def test_documented_xpnet_commands_parse(path, command):
    """Every `xpnet ...` line in the docs is accepted by the current command-line parser."""
    import shlex

    from xpnet.cli import build_parser

    build_parser().parse_args(shlex.split(command)[1:])  # SystemExit (status 2) on any drift


@pytest.mark.skipif(not os.environ.get("XPNET_RUN_DOC_COMMANDS"), reason="runs every documented command "
                    "(about 25 minutes); set XPNET_RUN_DOC_COMMANDS=1")
@pytest.mark.parametrize("path", sorted({p for p, _, _ in COMMANDS}), ids=str)
def test_documented_commands_run(path, tmp_path, shared_fashion):
    """Each page's commands, in order, in one scratch directory (installs and the test suite excepted)."""
    import shutil
    import subprocess

    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "tests", tmp_path / "tests")
    (tmp_path / "docs").mkdir()
    for page, command, status in COMMANDS:
        if page != path or "pip install" in command or command.endswith("pytest -q"):
            continue
        command = command.replace("/usr/share/datasets/fashion-mnist", str(shared_fashion))
        command = command.replace("../shared/data/fashion-mnist", str(shared_fashion))
        proc = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == status, f"{command}\n{proc.stderr[-2000:]}"


def test_the_readme_test_command_is_the_one_ci_runs():
    """The README's test command, as a user copies it, is a line of .ci/run, word for word."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("Install the test dependencies"):]
    command = re.search(r"```bash\n(.*?)\n```", block, flags=re.S).group(1).strip()
    assert "pytest" in command and command in (ROOT / ".ci" / "run").read_text().splitlines()
