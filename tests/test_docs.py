"""What the documentation shows works: configurations load, command lines parse.

The rules, for whoever writes README.md and docs/**/*.md:

- A fenced ``toml`` block with a ``[node]`` table is a whole gateway configuration: it must
  pass ``cxgw gateway --check`` as written. Relative paths resolve next to it, as for a file;
  absolute ones (``/etc/cxgw/...``, ``/var/lib/cxgw/...``) are moved under a temporary
  root. The files it names are made as an operator would make them first: lab certificates
  and keys (``cxgw certs``) for ``certificate``, ``private_key`` and ``ca_certificates``, a
  token for ``token_file``. Other ``toml`` blocks (sections to add to a file, the partners
  file of ``cxgw migrate``) must be valid TOML. A block whose first line is
  ``# fragment`` is not checked at all.
- In ``sh``/``bash``/``shell``/``console`` blocks, every command line that runs ``cxgw``
  (also as ``.venv/bin/cxgw``, after ``sudo -u cxgw`` or ``VAR=value``, joined over ``\\``
  continuations, cut at ``|``, ``&&``, ``;`` and redirections) must be accepted by the
  CLI's own parser (``gateway.cli.build_parser``). Nothing is executed. A block whose first
  line is ``# not runnable`` is skipped.
- The example configurations in gateway/examples pass ``--check`` (the TLS ones after
  ``cxgw certs`` as their header says), and the ``cxgw`` lines in their header comments
  parse.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
EXAMPLES = sorted((ROOT / "gateway" / "examples").glob("*.toml"))
SHELLS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "<<", "2>", "2>>", "&>", "(", ")"}
PEM_KEYS = {"certificate", "private_key", "ca_certificates"}
TOKEN = "cxgw-docs-test-token-0123456789abcdef"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, and its indented code blocks (as ``indented``:
    four spaces after a blank line, outside fences)."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            if lines[index].startswith("    ") and lines[index].strip() and (index == 0 or not lines[index - 1].strip()):
                end = index
                while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                    end += 1
                body = [line[4:] for line in lines[index:end]]
                blocks.append(Block(path, index + 1, "indented", "\n".join(body).rstrip() + "\n"))
                index = end
                continue
            index += 1
            continue
        fence, indent, body = opening["fence"], len(opening["indent"]), []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end].lstrip())
            end += 1
        blocks.append(Block(path, index + 1, opening["lang"].lower(), "\n".join(body) + "\n"))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in fenced_blocks(path)]
TOML_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "toml" and not b.text.startswith("# fragment")]
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELLS | {"indented"} and not b.text.startswith("# not runnable")]


# -- configurations ---------------------------------------------------------------------
def check_config(path: Path) -> tuple[int, str]:
    """``cxgw gateway --config PATH --check`` in this process: (exit status, its output)."""
    from gateway.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main(["gateway", "--config", str(path), "--check"])
        except SystemExit as exit_:
            status = int(exit_.code or 0)
    return status, out.getvalue()


def _strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(key, string) of every string in a parsed TOML document, depth first."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, k)]
    if isinstance(value, list):
        return [pair for item in value for pair in _strings(item, key)]
    return [(key, value)] if isinstance(value, str) else []


def materialise(text: str, folder: Path) -> Path:
    """The configuration written into ``folder`` with its absolute paths moved under it and
    the files it names made: lab PEM files (one CA, a certificate per name) and a token."""
    from cryptography.hazmat.primitives import serialization

    from gateway.testing.pki import make_ca, make_cert

    document = tomllib.loads(text)
    for _, value in _strings(document):
        if value.startswith("/") and not value.startswith(str(folder)):
            moved = folder / value.lstrip("/")
            moved.parent.mkdir(parents=True, exist_ok=True)  # as the unit's StateDirectory= would
            text = text.replace(f'"{value}"', f'"{moved}"')
    document = tomllib.loads(text)
    ca = make_ca("cxgw docs test CA")
    for key, value in _strings(document):
        path = folder / value
        if key == "token_file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(TOKEN + "\n")
            path.chmod(0o600)
        elif key in PEM_KEYS and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            stem = path.name.split(".pem")[0].split(".key")[0]
            if key == "ca_certificates":
                path.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
                continue
            key_pem, cert = make_cert(ca, stem, [stem])
            path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            path.with_suffix(".key").write_bytes(key_pem.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    config = folder / "config.toml"
    config.write_text(text)
    return config


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=lambda b: b.where)
def test_toml_block(block: Block, tmp_path: Path) -> None:
    try:
        document = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as error:
        pytest.fail(f"{block.where}: not valid TOML ({error}); mark it '# fragment' if it is not meant to be")
    if "node" not in document:
        return  # a section to add to a file, or another program's file: valid TOML is all we know
    status, output = check_config(materialise(block.text, tmp_path))
    assert status == 0, f"{block.where}: cxgw gateway --check fails:\n{output}"


# -- command lines ----------------------------------------------------------------------
ASSIGNMENT = re.compile(r"""([A-Za-z_]\w*)=(?:"([^"$`]*)"|'([^']*)')\s*(?:#.*)?""")


def command_lines(text: str) -> list[str]:
    """The shell lines of a block: continuations joined, prompts and comments dropped, and
    a variable assigned in the block (``P="cxgw provision --db hss.db"``) expanded where a
    line starts with it (``$P init``)."""
    lines, pending, variables = [], "", {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        assigned = ASSIGNMENT.fullmatch(line)
        if assigned:
            variables[assigned[1]] = assigned[2] if assigned[2] is not None else assigned[3]
        start = re.match(r"\$\{?([A-Za-z_]\w*)\}?(?=\s|$)", line)
        if start and start[1] in variables:
            line = variables[start[1]] + line[start.end():]
        lines.append(line)
    if pending:
        lines.append(pending)
    return lines


def cxgw_commands(line: str) -> list[list[str]]:
    """Argument lists given to cxgw on a shell line."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: not a command line we can read
        return [["<unreadable shell line>", line]] if "cxgw" in line else []
    commands, current = [], []
    for token in [*tokens, ";"]:
        if token in SEPARATORS or set(token) <= set("|&;<>()"):
            args = cxgw_arguments(current)
            if args is not None:
                commands.append(args)
            current = []
        else:
            current.append(token)
    return commands


SUDO_OPTIONS_WITH_VALUE = {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}


def cxgw_arguments(words: list[str]) -> list[str] | None:
    """The arguments when ``words`` run cxgw (``cxgw``, ``.venv/bin/cxgw``, ``python -m
    gateway.cli``), after ``VAR=value`` and ``sudo [options]``; else None."""
    index = 0
    while index < len(words) and re.fullmatch(r"[A-Za-z_]\w*=.*", words[index]):
        index += 1
    if index < len(words) and Path(words[index]).name == "sudo":
        index += 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in SUDO_OPTIONS_WITH_VALUE else 1
    rest = words[index:]
    if rest and Path(rest[0]).name == "cxgw":
        return rest[1:]
    if len(rest) >= 3 and Path(rest[0]).name.startswith("python") and rest[1:3] == ["-m", "gateway.cli"]:
        return rest[3:]
    return None


def parse_problem(args: list[str]) -> str | None:
    """None when the CLI parser accepts ``args``, else what it said."""
    from gateway.cli import build_parser

    if args[:1] == ["<unreadable shell line>"]:
        return f"unbalanced quotes in: {args[1]}"
    command = next((arg for arg in args if not arg.startswith("-")), None)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser(command).parse_args(args)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exit_.code}"
    except ImportError as error:
        return f"the subcommand's module cannot be imported: {error}"
    return None


def is_output(block: Block, args: list[str]) -> bool:
    """In an indented block (no language to tell), ``cxgw capture replay: ...`` is what a
    command printed: a word ending in a colon among its first ones."""
    return block.lang == "indented" and any(word.endswith(":") for word in args[:3])


SHELL_COMMANDS = [pytest.param(block, args, id=f"{block.where}:{' '.join(args[:2])}")
                  for block in SHELL_BLOCKS for line in command_lines(block.text) for args in cxgw_commands(line)
                  if not is_output(block, args)]


@pytest.mark.parametrize(("block", "args"), SHELL_COMMANDS)
def test_cxgw_command_line_parses(block: Block, args: list[str]) -> None:
    problem = parse_problem(args)
    assert problem is None, f"{block.where}: cxgw {shlex.join(args)}: {problem}"


# -- the shipped examples ---------------------------------------------------------------
def header_commands(path: Path) -> list[list[str]]:
    """The cxgw command lines in an example's comments: indented by two spaces or more
    after the ``#`` (``#   cxgw ...`` and its continuations), unlike the prose."""
    text = "\n".join(line[1:] for line in path.read_text().splitlines() if re.match(r"#\s{2,}\S", line))
    return [args for line in command_lines(text) for args in cxgw_commands(line)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_check(example: Path, tmp_path: Path) -> None:
    """As the header says: TLS examples after `cxgw certs DIR NAMES` into their tls/ folder."""
    from gateway.cli import main

    copy = tmp_path / example.name
    copy.write_text(example.read_text())
    for args in header_commands(example):
        if args[:1] == ["certs"]:
            directory = tmp_path / Path(args[1]).name
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["certs", str(directory), *args[2:]]) == 0
    status, output = check_config(copy)
    assert status == 0, output
    assert output.strip() == f"{copy}: configuration is valid"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_header_commands_parse(example: Path) -> None:
    commands = header_commands(example)
    assert any(args[:1] == ["gateway"] for args in commands), "the header shows how to run it"
    for args in commands:
        problem = parse_problem(args)
        assert problem is None, f"{example.name}: cxgw {shlex.join(args)}: {problem}"


def test_the_harness_finds_what_it_checks() -> None:
    """A harness that finds nothing passes everything: the README's blocks are found."""
    readme = [b for b in ALL_BLOCKS if b.path.name == "README.md"]
    assert any(b.lang == "sh" for b in readme)
    assert any(args == ["demo"] for b in readme for line in command_lines(b.text) for args in cxgw_commands(line))
    assert cxgw_commands("CI=true sudo -u cxgw /opt/cxgw/.venv/bin/cxgw provision --db x.sqlite init && echo ok") == [
        ["provision", "--db", "x.sqlite", "init"]]
    assert parse_problem(["gateway", "--config"]) is not None
    assert parse_problem(["send", "127.0.0.1:3868", "--no-such-option"]) is not None
    assert command_lines("# c\n$ cxgw a \\\n  --b c\n") == ["cxgw a --b c"]
    assert cxgw_commands("sudo install -d -m 0750 -g cxgw /etc/cxgw") == []
    assert command_lines('P="cxgw provision --db x"   # a comment\n$P init\n${P} subscriber list\n') == [
        'P="cxgw provision --db x"   # a comment', "cxgw provision --db x init", "cxgw provision --db x subscriber list"]
    assert cxgw_commands(".venv/bin/python -m gateway.cli decode - < in.hex") == [["decode", "-"]]


def test_the_harness_checks_whole_configurations(tmp_path: Path) -> None:
    """A TLS configuration with absolute paths passes once its files are made; a wrong
    key fails with the checker's message."""
    config = """
[node]
origin_host = "gw.partner.example"
origin_realm = "partner.example"
role = "partner"
[[listen]]
port = 5658
transport = "tls"
[tls]
certificate = "/etc/cxgw/tls/gw.partner.example.pem"
private_key = "/etc/cxgw/tls/gw.partner.example.key"
ca_certificates = ["/etc/cxgw/tls/interconnect-ca.pem"]
[store]
target = "/var/lib/cxgw/partner.sqlite"
"""
    (tmp_path / "good").mkdir()
    status, output = check_config(materialise(config, tmp_path / "good"))
    assert status == 0, output
    (tmp_path / "bad").mkdir()
    status, output = check_config(materialise(config.replace("port = 5658", "port = 70000"), tmp_path / "bad"))
    assert status == 2 and "listen[0].port = 70000" in output, output


def test_the_readme_gives_the_two_commands_the_tests_and_ci_run() -> None:
    """The README's first block: the main job as tests/gateway/test_demo.py runs it, and the
    test command that .ci/run runs."""
    first = next(b for b in ALL_BLOCKS if b.path.name == "README.md" and b.lang == "sh")
    lines = [line.split("#")[0].strip() for line in first.text.splitlines() if line.strip()]
    assert lines == [".ci/install && .venv/bin/cxgw demo", ".ci/run"], first.where
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ".ci/install" in ci_run and ci_run[-1] == "exec .venv/bin/python -m pytest -q"
