""".llamaignore: gitignore syntax, read from the project root, re-read when changed.

Every expected answer in GITIGNORE_CASES is what ``git check-ignore --no-index``
says for the same patterns and path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llama_nvim.llamaignore import IGNORE_FILE, IgnoreRules, LlamaIgnore

# (patterns, path relative to the root, ignored)
GITIGNORE_CASES = [
    ("*.log", "a.log", True),
    ("*.log", "d/a.log", True),
    ("*.log", "d/e/a.log", True),
    ("*.log", "a.log.txt", False),
    ("*.log", "log", False),
    ("/root.txt", "root.txt", True),
    ("/root.txt", "d/root.txt", False),
    ("build/", "build/x.o", True),
    ("build/", "d/build/x.o", True),
    ("build/", "build", False),
    ("build/", "build2/x", False),
    ("doc/frotz/", "doc/frotz/a", True),
    ("doc/frotz/", "a/doc/frotz/b", False),
    ("doc/frotz/", "doc/frotz", False),
    ("doc/frotz", "doc/frotz", True),
    ("doc/frotz", "doc/frotz/a", True),
    ("doc/frotz", "a/doc/frotz", False),
    ("**/foo", "foo", True),
    ("**/foo", "a/foo", True),
    ("**/foo", "a/b/foo", True),
    ("**/foo", "a/foo/x", True),
    ("**/foo", "afoo", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "a/foo/bar", True),
    ("**/foo/bar", "a/foo/bar/z", True),
    ("**/foo/bar", "foo/x/bar", False),
    ("abc/**", "abc/x", True),
    ("abc/**", "abc/x/y", True),
    ("abc/**", "abc", False),
    ("abc/**", "x/abc/y", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**/b", "x/a/b", False),
    ("*.env\n!keep.env", "a.env", True),
    ("*.env\n!keep.env", "keep.env", False),
    ("*.env\n!keep.env", "d/keep.env", False),
    ("secret/\n!secret/ok.txt", "secret/ok.txt", True),
    ("secret/\n!secret/ok.txt", "secret/no.txt", True),
    ("secret/*\n!secret/ok.txt", "secret/ok.txt", False),
    ("secret/*\n!secret/ok.txt", "secret/no.txt", True),
    ("secret/*\n!secret/ok.txt", "secret/sub/ok.txt", True),
    ("# comment\n\n  \nfoo", "# comment", False),
    ("# comment\n\n  \nfoo", "foo", True),
    ("# comment\n\n  \nfoo", "comment", False),
    ("\\#hash\n\\!bang", "#hash", True),
    ("\\#hash\n\\!bang", "!bang", True),
    ("\\#hash\n\\!bang", "hash", False),
    ("trail  \nsp\\ ", "trail", True),
    ("trail  \nsp\\ ", "trail  ", False),
    ("trail  \nsp\\ ", "sp ", True),
    ("trail  \nsp\\ ", "sp", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file12.txt", False),
    ("file?.txt", "file/.txt", False),
    ("[ab].c\n[!xy].d", "a.c", True),
    ("[ab].c\n[!xy].d", "c.c", False),
    ("[ab].c\n[!xy].d", "x.d", False),
    ("[ab].c\n[!xy].d", "z.d", True),
    ("foo**bar", "foobar", True),
    ("foo**bar", "fooxbar", True),
    ("foo**bar", "foo/bar", False),
    ("a/*.c", "a/x.c", True),
    ("a/*.c", "a/b/x.c", False),
    ("a/*.c", "b/a/x.c", False),
    ("*", "a", True),
    ("*", "b/c", True),
    ("*\n!*.py\n!*/", "a.txt", True),
    ("*\n!*.py\n!*/", "a.py", False),
    ("*\n!*.py\n!*/", "d/a.py", False),
    ("*\n!*.py\n!*/", "d/a.txt", True),
    ("**", "a", True),
    ("**", "b/c", True),
    ("/d/\n!/d/x", "d/x", True),
    ("/d/\n!/d/x", "d/y", True),
    ("x/", "x", False),
    ("x/", "y/x", False),
    ("[abc", "[abc", False),
    ("[abc", "a", False),
    ("*.[Ll][Oo][Gg]", "A.LOG", True),
    ("*.[Ll][Oo][Gg]", "a.log", True),
    ("*.[Ll][Oo][Gg]", "a.lOg", True),
    ("*.[Ll][Oo][Gg]", "a.txt", False),
    ("Secret.txt", "secret.txt", False),
    ("Secret.txt", "Secret.txt", True),
    ("!nothing", "nothing", False),
    ("a/b/\n!a/b/c", "a/b/c", True),
    ("a/b/\n!a/b/c", "a/b/d", True),
    ("**/logs/*.log", "logs/a.log", True),
    ("**/logs/*.log", "x/logs/a.log", True),
    ("**/logs/*.log", "x/logs/y/a.log", False),
]


@pytest.mark.parametrize(("patterns", "path", "ignored"), GITIGNORE_CASES)
def test_patterns_match_as_git_matches_them(patterns: str, path: str, ignored: bool) -> None:
    assert IgnoreRules(patterns).ignored(path) is ignored


def test_comments_and_blank_lines_are_no_patterns() -> None:
    assert len(IgnoreRules("# a comment\n\n   \n#another\n")) == 0


def test_windows_line_endings_are_read_like_unix_ones() -> None:
    rules = IgnoreRules("*.log\r\n!keep.log\r\n")
    assert rules.ignored("a.log")
    assert not rules.ignored("keep.log")


def test_a_file_inside_an_ignored_folder_cannot_be_re_included() -> None:
    rules = IgnoreRules("private/\n!private/README.md\n")
    assert rules.ignored("private/README.md")
    assert rules.ignored("private/deep/README.md")


def test_the_last_matching_pattern_decides() -> None:
    assert not IgnoreRules("*.txt\n!a.txt\n").ignored("a.txt")
    assert IgnoreRules("!a.txt\n*.txt\n").ignored("a.txt")


def test_an_empty_or_root_path_is_never_ignored() -> None:
    rules = IgnoreRules("*\n")
    assert not rules.ignored("")
    assert not rules.ignored("/")


def test_answers_stay_right_when_asked_again() -> None:
    rules = IgnoreRules("*.env\n!keep.env\n")
    for _ in range(3):
        assert rules.ignored("a.env")
        assert not rules.ignored("keep.env")


# -- LlamaIgnore: the file in the project root ------------------------------------------------


def write(root: Path, text: str, *, mtime_ns: int | None = None) -> Path:
    path = root / IGNORE_FILE
    path.write_text(text, "utf-8")
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_files_are_matched_relative_to_the_project_root(tmp_path: Path) -> None:
    write(tmp_path, "/secrets/\n*.sql\n")
    ignore = LlamaIgnore()
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/secrets/token.txt", root)
    assert ignore.ignored(f"{root}/db/dump.sql", root)
    assert not ignore.ignored(f"{root}/src/secrets/token.txt", root), "anchored at the root"
    assert not ignore.ignored(f"{root}/main.py", root)


def test_no_ignore_file_ignores_nothing(tmp_path: Path) -> None:
    ignore = LlamaIgnore()
    assert not ignore.ignored(f"{tmp_path}/a.sql", str(tmp_path))
    assert ignore.take_problems() == []


def test_files_outside_the_root_are_not_matched(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    write(project, "*\n")
    ignore = LlamaIgnore()
    assert ignore.ignored(f"{project}/a.py", str(project))
    assert not ignore.ignored(f"{tmp_path}/other/a.py", str(project))
    assert not ignore.ignored(f"{tmp_path}/proj2/a.py", str(project)), "a sibling, not inside"
    assert not ignore.ignored("", str(project))
    assert not ignore.ignored(f"{project}/a.py", "")


def test_paths_are_normalized_before_matching(tmp_path: Path) -> None:
    write(tmp_path, "/secrets/\n")
    ignore = LlamaIgnore()
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/src/../secrets//key", root + "/")
    assert not ignore.ignored(f"{root}/secrets/../main.py", root)


def test_an_edited_ignore_file_is_read_again(tmp_path: Path) -> None:
    write(tmp_path, "*.sql\n", mtime_ns=1_000_000_000)
    ignore = LlamaIgnore()
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/a.sql", root)
    assert not ignore.ignored(f"{root}/a.csv", root)
    write(tmp_path, "*.csv\n", mtime_ns=2_000_000_000)
    assert not ignore.ignored(f"{root}/a.sql", root)
    assert ignore.ignored(f"{root}/a.csv", root)


def test_a_removed_ignore_file_stops_ignoring(tmp_path: Path) -> None:
    path = write(tmp_path, "*.sql\n")
    ignore = LlamaIgnore()
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/a.sql", root)
    path.unlink()
    assert not ignore.ignored(f"{root}/a.sql", root)


def test_an_unchanged_ignore_file_is_read_once(tmp_path: Path) -> None:
    write(tmp_path, "*.sql\n")
    reads: list[str] = []

    def read(path: str) -> bytes:
        reads.append(path)
        return Path(path).read_bytes()

    ignore = LlamaIgnore(read=read)
    root = str(tmp_path)
    for name in ("a.sql", "b.py", "c.sql", "a.sql"):
        ignore.ignored(f"{root}/{name}", root)
    assert reads == [str(tmp_path / IGNORE_FILE)]


def test_an_unreadable_ignore_file_hides_the_whole_project_and_says_so_once(
    tmp_path: Path,
) -> None:
    write(tmp_path, "*.sql\n")

    def read(path: str) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    ignore = LlamaIgnore(read=read)
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/main.py", root)
    assert ignore.ignored(f"{root}/other.py", root)
    problems = ignore.take_problems()
    assert len(problems) == 1
    assert IGNORE_FILE in problems[0]
    assert "Permission denied" in problems[0]
    assert ignore.take_problems() == [], "told once, not at every keystroke"


def test_an_ignore_file_that_cannot_be_stat_hides_the_project(tmp_path: Path) -> None:
    def stat(path: str) -> os.stat_result:
        raise PermissionError(13, "Permission denied", path)

    ignore = LlamaIgnore(stat=stat)
    root = str(tmp_path)
    assert ignore.ignored(f"{root}/main.py", root)
    assert ignore.ignored(f"{root}/main.py", root)
    assert len(ignore.take_problems()) == 1


def test_a_folder_named_like_the_ignore_file_hides_the_project(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).mkdir()
    ignore = LlamaIgnore()
    assert ignore.ignored(f"{tmp_path}/main.py", str(tmp_path))
    assert len(ignore.take_problems()) == 1


def test_each_project_has_its_own_ignore_file(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write(one, "*.sql\n")
    write(two, "*.csv\n")
    ignore = LlamaIgnore()
    assert ignore.ignored(f"{one}/a.sql", str(one))
    assert not ignore.ignored(f"{one}/a.csv", str(one))
    assert ignore.ignored(f"{two}/a.csv", str(two))
    assert not ignore.ignored(f"{two}/a.sql", str(two))


def test_the_cache_of_roots_is_bounded(tmp_path: Path) -> None:
    roots = []
    for i in range(5):
        root = tmp_path / f"p{i}"
        root.mkdir()
        write(root, "*.sql\n")
        roots.append(str(root))
    reads: list[str] = []

    def read(path: str) -> bytes:
        reads.append(path)
        return Path(path).read_bytes()

    ignore = LlamaIgnore(read=read, max_roots=2)
    for name in roots:
        assert ignore.ignored(f"{name}/a.sql", name)
    assert ignore.ignored(f"{roots[0]}/a.sql", roots[0])
    assert len(reads) == 6, "the first root was evicted and read again"
