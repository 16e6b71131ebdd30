"""Every reference in the repository resolves, so that the repository stands alone.

Checked in every tracked text file:

- markdown links (in ``.md`` files) and backticked paths name files or directories the
  repository holds, and links into a markdown file name one of its headings;
- citations of the spec (``docs/spec/<file>.md``, with ``§N.M`` or ``rule N``, see
  docs/spec/README.md §3) name a spec file, section or rule that exists;
- nothing names a document that lives outside the repository.

Run ``.venv/bin/python -m tests.test_references`` to list the problems.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = "docs/spec"
SKIPPED_DIRS = frozenset(
    {".git", ".venv", ".tools", ".momentum", "node_modules", "__pycache__", "build", "dist"}
)

# Documents kept beside the repository, never in it. Spelled in pieces so that this file
# does not name them itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\bCONTRACT" + r"(?:\.md\b|\s*§)",
            r"\bARCHITECTURE" + r"\.md\b",
            r"\bSTYLE" + r"\.md\b",
            r"\.\." + r"/shared/",
        ]
    )
)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SECTION_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s|$)")
RULE_DEFINITION = re.compile(r"^\s*(?:[-*]\s+|\d+\.\s+)?\*\*Rule (\d+)\.\*\*", re.MULTILINE)
FENCE = re.compile(r"^\s*(```|~~~)")
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
BACKTICKED = re.compile(r"`+([^`\n]+?)`+")
PATH_TEXT = re.compile(r"(?:\./)?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.*-]*)+")
LOCATION_SUFFIX = re.compile(r"(?:::[\w\[\]-]+|:\d+(?::\d+)?)$")
_RULE_LIST = r"\d+(?:(?:\s*,\s*|\s+and\s+|\s+to\s+|\s*[\u2013-]\s*)\d+)*"
_CITATION_TAIL = (
    r"(?P<tail>,?\s+§\s?(?P<section>\d+(?:\.\d+)*)"
    r"|,?\s+[Rr]ules?\s+(?P<rules>" + _RULE_LIST + r"))?"
)
_FILE = r"(?P<file>[A-Za-z0-9_-]+\.md)(?:#(?P<anchor>[\w-]+))?"
CITATION = re.compile(r"(?<![\w/.-])" + SPEC_DIR + "/" + _FILE + _CITATION_TAIL)
# Inside docs/spec the files cite each other by their bare names.
LOCAL_CITATION = re.compile(r"(?<![\w/.-])(?:" + SPEC_DIR + "/)?" + _FILE + _CITATION_TAIL)
BARE_RULE = re.compile(r"(?<![\w*])[Rr]ules?\s+(" + _RULE_LIST + r")\b")


# ``report(offset, message)``: a problem at that character offset of the file being checked.
Report = Callable[[int, str], None]


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class MarkdownFile:
    """What a markdown file offers to be cited: heading anchors, section numbers, rules."""

    anchors: set[str] = field(default_factory=set)
    sections: set[str] = field(default_factory=set)
    rules: set[int] = field(default_factory=set)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def parse_markdown(text: str) -> MarkdownFile:
    parsed = MarkdownFile()
    seen: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = HEADING.match(line)
        if heading is None:
            continue
        title = heading[2]
        anchor = slug(title)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        parsed.anchors.add(anchor if count == 0 else f"{anchor}-{count}")
        number = SECTION_NUMBER.match(title)
        if number is not None and len(heading[1]) >= 2:
            parsed.sections.add(number[1])
    parsed.rules = {int(n) for n in RULE_DEFINITION.findall(text)}
    return parsed


def listed_files(root: Path) -> list[str]:
    """The files of the repository: the tracked ones in a git checkout, else a walk."""
    if (root / ".git").exists():
        try:
            result = subprocess.run(
                ["git", "ls-files", "-z", "--cached"], cwd=root, capture_output=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            pass  # no usable git: walk the tree instead
        else:
            names = {name for name in result.stdout.decode().split("\0") if name}
            return sorted(name for name in names if (root / name).is_file())
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            found.append((Path(directory) / name).relative_to(root).as_posix())
    return sorted(found)


def read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def rule_numbers(text: str) -> list[int]:
    """``4, 5`` -> [4, 5]; ``1 to 9`` and ``1-9`` (hyphen or en dash) are ranges."""
    numbers: list[int] = []
    parts = re.split(r"(\s*,\s*|\s+and\s+|\s+to\s+|\s*[\u2013-]\s*)", text)
    values = [int(p) for p in parts[::2]]
    separators = parts[1::2]
    numbers.append(values[0])
    for separator, value in zip(separators, values[1:], strict=True):
        if separator.strip() in ("to", "\u2013", "-"):
            numbers.extend(range(numbers[-1] + 1, value + 1))
        else:
            numbers.append(value)
    return numbers


class Checker:
    def __init__(self, root: Path, files: Iterable[str] | None = None) -> None:
        self.root = root
        self.files = sorted(files) if files is not None else listed_files(root)
        self.file_set = frozenset(self.files)
        self.dirs = frozenset(
            str(parent)
            for name in self.files
            for parent in PurePosixPath(name).parents
            if str(parent) != "."
        )
        self.top_level = frozenset(name.split("/", 1)[0] for name in self.dirs)
        self._markdown: dict[str, MarkdownFile | None] = {}

    # -- what exists ----------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        name = name.rstrip("/")
        if any(char in name for char in "*?["):
            return any(fnmatch.fnmatchcase(f, name) for f in self.file_set | self.dirs)
        return name in self.file_set or name in self.dirs or name == ""

    def markdown(self, name: str) -> MarkdownFile | None:
        if name not in self._markdown:
            text = read_text(self.root / name) if name in self.file_set else None
            self._markdown[name] = parse_markdown(text) if text is not None else None
        return self._markdown[name]

    # -- the checks -----------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        for name in self.files:
            text = read_text(self.root / name)
            if text is not None:
                found.extend(self.check_file(name, text))
        return sorted(found)

    def check_file(self, name: str, text: str) -> list[Problem]:
        found: list[Problem] = []

        def report(offset: int, message: str) -> None:
            found.append(Problem(name, text.count("\n", 0, offset) + 1, message))

        for match in OUTSIDE.finditer(text):
            report(match.start(), f"names a document outside the repository: {match[0]!r}")
        if name.endswith(".md"):
            for match in MARKDOWN_LINK.finditer(text):
                if (message := self.check_link(name, match[1])) is not None:
                    report(match.start(), message)
        for match in BACKTICKED.finditer(text):
            if (message := self.check_backticked(match[1].strip())) is not None:
                report(match.start(), message)
        self.check_citations(name, text, report)
        return found

    def check_link(self, source: str, target: str) -> str | None:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            return None  # a URL
        path, _, anchor = target.partition("#")
        if not path:
            resolved = source
        else:
            joined = os.path.normpath(os.path.join(os.path.dirname(source), path))
            if joined == ".." or joined.startswith("../") or os.path.isabs(path):
                return f"links outside the repository: {target}"
            resolved = "" if joined == "." else PurePosixPath(joined).as_posix()
            if not self.exists(resolved):
                return f"links to a path the repository does not hold: {target}"
        if anchor and resolved.endswith(".md"):
            parsed = self.markdown(resolved)
            if parsed is not None and anchor not in parsed.anchors:
                return f"links to a heading {resolved} does not have: #{anchor}"
        return None

    def check_backticked(self, span: str) -> str | None:
        candidate = LOCATION_SUFFIX.sub("", span)
        if not PATH_TEXT.fullmatch(candidate):
            return None
        if candidate.startswith("../"):
            return f"names a path outside the repository: {span}"
        candidate = candidate.removeprefix("./")
        if candidate.split("/", 1)[0] not in self.top_level:
            return None  # not a repository path (a URL path, a module, a subject)
        if not self.exists(candidate):
            return f"names a path the repository does not hold: {span}"
        return None

    def check_citations(self, name: str, text: str, report: Report) -> None:
        in_spec = name.startswith(SPEC_DIR + "/")
        pattern = LOCAL_CITATION if in_spec else CITATION
        # A bare "rule N" is, in a spec file, one of its own rules; elsewhere one of the
        # spec file cited last before it.
        cited: list[tuple[int, int, str]] = []
        for match in pattern.finditer(text):
            spec = f"{SPEC_DIR}/{match['file']}"
            cited.append((match.start(), match.end(), spec))
            parsed = self.markdown(spec)
            if parsed is None:
                report(match.start(), f"cites a spec file that does not exist: {spec}")
                continue
            if match["anchor"] and match["anchor"] not in parsed.anchors:
                report(match.start(), f"cites a heading {spec} does not have: #{match['anchor']}")
            if match["section"] and match["section"] not in parsed.sections:
                report(match.start(), f"cites a section {spec} does not have: §{match['section']}")
            if match["rules"]:
                self._check_rules(spec, parsed, match["rules"], match.start(), report)
        definitions = {m.start(1) for m in RULE_DEFINITION.finditer(text)}
        for match in BARE_RULE.finditer(text):
            if match.start(1) in definitions or any(s <= match.start() < e for s, e, _ in cited):
                continue
            before = [cited_spec for start, _, cited_spec in cited if start < match.start()]
            rules_of = name if in_spec else (before[-1] if before else None)
            if rules_of is None:
                report(match.start(), f"cites {match[0]!r} without naming a spec file before it")
                continue
            if (of := self.markdown(rules_of)) is not None:
                self._check_rules(rules_of, of, match[1], match.start(), report)

    @staticmethod
    def _check_rules(
        spec: str, parsed: MarkdownFile, rules: str, offset: int, report: Report
    ) -> None:
        missing = [n for n in rule_numbers(rules) if n not in parsed.rules]
        if missing:
            listed = ", ".join(str(n) for n in missing)
            report(offset, f"cites a rule {spec} does not have: {listed}")


def check(root: Path, files: Iterable[str] | None = None) -> list[Problem]:
    return Checker(root, files).problems()


def test_every_reference_in_the_repository_resolves() -> None:
    problems = check(ROOT)
    assert not problems, "broken references:\n" + "\n".join(str(p) for p in problems)


# -- the checker itself, on small trees -----------------------------------------------------
# Fixture text is assembled from pieces so that this file never holds a broken reference
# itself: TICK for backticks, SPEC for the spec directory.
TICK = "`"
SPEC = SPEC_DIR
SPEC_FILE = """# Analytics

## 1. Routes

### 1.2 Weekly report

## 4. Counting rules

**Rule 1.** One.

**Rule 2.** Two.

```
## 9. Not a heading: inside a code block
```
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _messages(root: Path) -> list[str]:
    return [str(problem) for problem in check(root)]


def test_a_tree_whose_references_all_resolve_passes(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            f"{SPEC}/analytics.md": SPEC_FILE,
            f"{SPEC}/README.md": "# Spec\n\nSee [the rules](analytics.md#4-counting-rules).\n",
            "services/a/code.py": (
                f"# {SPEC}/analytics.md §1.2, then {SPEC}/analytics.md, rules {1} to {2}\n"
                f"x = 1  # rule {1} again, and {TICK}services/a/code.py:1{TICK}\n"
            ),
            "README.md": f"[spec]({SPEC}/) and [a]({SPEC}/analytics.md#1-routes)\n",
        },
    )
    assert _messages(root) == []


def test_a_backticked_path_the_tree_does_not_hold_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "docs/a.md": "# A\n",
            "docs/adr/0001.md": f"Intro.\n\nCode in {TICK}docs/missing.py{TICK}.\n",
        },
    )
    assert _messages(root) == [
        "docs/adr/0001.md:3: names a path the repository does not hold: docs/missing.py"
    ]


def test_a_broken_markdown_link_or_heading_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "docs/guide.md": SPEC_FILE,
            "README.md": (
                "[gone](docs/gone.md)\n"
                "[heading](docs/guide.md#9-not-a-heading-inside-a-code-block)\n"
                "[up](../elsewhere.md)\n"
            ),
        },
    )
    assert _messages(root) == [
        "README.md:1: links to a path the repository does not hold: docs/gone.md",
        "README.md:2: links to a heading docs/guide.md does not have:"
        " #9-not-a-heading-inside-a-code-block",
        "README.md:3: links outside the repository: ../elsewhere.md",
    ]


def test_a_citation_of_a_missing_spec_file_section_or_rule_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            f"{SPEC}/analytics.md": SPEC_FILE,
            "services/a/code.py": (
                f"# rule {1} before any spec file is named\n"
                f"# {SPEC}/analytics.md §3 does not exist\n"
                f"# {SPEC}/analytics.md, rules {1} to {3}\n"
                f"# {SPEC}/planned.md names a file that is not there\n"
            ),
        },
    )
    assert _messages(root) == [
        f"services/a/code.py:1: cites 'rule {1}' without naming a spec file before it",
        f"services/a/code.py:2: cites a section {SPEC}/analytics.md does not have: §3",
        f"services/a/code.py:3: cites a rule {SPEC}/analytics.md does not have: 3",
        f"services/a/code.py:4: cites a spec file that does not exist: {SPEC}/planned.md",
    ]


def test_a_bare_rule_in_a_spec_file_is_one_of_its_own(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            f"{SPEC}/analytics.md": SPEC_FILE + f"\nBy rule {2}, and rules {1} and {7}.\n",
        },
    )
    assert _messages(root) == [
        f"{SPEC}/analytics.md:17: cites a rule {SPEC}/analytics.md does not have: 7"
    ]


def test_a_document_outside_the_repository_fails(tmp_path: Path) -> None:
    outside = ".." + "/shared/docs/x.md"
    contract = "CONTRACT" + ".md"
    root = _tree(tmp_path, {"docs/a.md": f"See {outside}.\n\nAs {contract} says.\n"})
    assert _messages(root) == [
        f"docs/a.md:1: names a document outside the repository: {outside[:10]!r}",
        f"docs/a.md:3: names a document outside the repository: {contract!r}",
    ]


def test_rule_lists_and_ranges() -> None:
    assert rule_numbers("4, 5") == [4, 5]
    assert rule_numbers("1 to 3") == [1, 2, 3]
    assert rule_numbers("3 and 7") == [3, 7]
    assert rule_numbers("1\u20132, 9") == [1, 2, 9]


def test_heading_anchors_follow_github() -> None:
    assert slug("2.7 Versions, ETags and If-Match") == "27-versions-etags-and-if-match"
    assert slug("3. Revoked sessions") == "3-revoked-sessions"
    assert slug("The `scope` claim") == "the-scope-claim"


if __name__ == "__main__":
    for problem in check(ROOT):
        print(problem)  # noqa: T201
