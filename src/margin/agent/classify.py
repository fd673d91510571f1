"""Map a coding agent's tool call to action classes (stdlib-only, used by ``margin gate``).

A tool call is cut into *parts*, each with an action class: one part for a file tool, one
per simple command for a shell command. Shell commands are tokenized with :mod:`shlex`
(quotes respected, so ``echo "rm -rf /"`` is an ``echo``), split on ``&&``, ``||``, ``;``,
``|``, ``&`` and subshell parentheses; command substitutions ``$(…)`` and backticks outside
single quotes, ``bash -c``/``sh -c``/``eval`` strings and wrappers (``sudo``, ``env``,
``timeout``, ``xargs`` …) are classified recursively. The caller prices every part and the
riskiest one decides.

Classes: ``read``, ``draft``, ``execute``, ``commit``, ``protected`` (secrets, keys, VCS
internals, CI and agent settings), ``publish``, ``spend``, ``destroy``, and ``unknown``
for what is not recognized (MCP tools, unknown programs), which gets the schedule's
unknown level.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CLAUDE_CODE_RULES",
    "Part",
    "classify_command",
    "classify_tool_call",
    "is_protected_path",
]


@dataclass(frozen=True, slots=True)
class Part:
    """One classified piece of a tool call: its action class and the text that decided it."""

    action: str
    text: str


# -- file tools ------------------------------------------------------------------------
READ_TOOLS = frozenset(
    {
        "Read",
        "Grep",
        "Glob",
        "LS",
        "WebFetch",
        "WebSearch",
        "NotebookRead",
        "TodoWrite",
        "TodoRead",
        "Task",
        "BashOutput",
        "KillShell",
        "KillBash",
        "ExitPlanMode",
    }
)
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
_PATH_KEYS = ("file_path", "notebook_path", "path")

_PROTECTED_DIRS = frozenset({".git", ".ssh", ".gnupg"})
_PROTECTED_NAMES = frozenset(
    {
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".dockercfg",
        ".gitlab-ci.yml",
        ".gitlab-ci.yaml",
    }
)
_PROTECTED_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".kdbx")
_KEY_PREFIXES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")


def is_protected_path(path: str) -> bool:
    """True for secrets, keys, VCS internals, CI pipelines and agent settings.

    Examples
    --------
    >>> [is_protected_path(p) for p in ("src/app.py", ".env", "/r/.git/config", "k/id_rsa")]
    [False, True, True, True]
    """
    parts = [p for p in path.replace("\\", "/").lower().split("/") if p]
    if not parts:
        return False
    name = parts[-1]
    if _PROTECTED_DIRS.intersection(parts[:-1]) or name in _PROTECTED_DIRS:
        return True
    if name == ".env" or name.startswith(".env."):
        return True
    if (
        name in _PROTECTED_NAMES
        or name.endswith(_PROTECTED_SUFFIXES)
        or name.startswith(_KEY_PREFIXES)
    ):
        return True
    if "credential" in name or "secret" in name:
        return True
    if len(parts) >= 2 and parts[-2] == ".aws" and name in ("credentials", "config"):
        return True
    joined = "/".join(parts)
    if "/.github/workflows/" in f"/{joined}":
        return True
    return (
        len(parts) >= 2
        and parts[-2] == ".claude"
        and name.startswith("settings")
        and name.endswith(".json")
    )


# -- shell commands --------------------------------------------------------------------
_READ_PROGRAMS = frozenset(
    [
        "ls",
        "cat",
        "head",
        "tail",
        "less",
        "more",
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "ag",
        "ack",
        "wc",
        "pwd",
        "echo",
        "printf",
        "which",
        "type",
        "file",
        "stat",
        "du",
        "df",
        "tree",
        "diff",
        "cmp",
        "sort",
        "uniq",
        "cut",
        "tr",
        "jq",
        "yq",
        "date",
        "whoami",
        "id",
        "uname",
        "hostname",
        "ps",
        "true",
        "false",
        "test",
        "[",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "cd",
        "pushd",
        "popd",
        "man",
        "help",
        "nl",
        "column",
        "fold",
        "paste",
        "comm",
        "expr",
        "seq",
        "sleep",
        "uptime",
        "free",
        "lsof",
        "env",
        "printenv",
        "locate",
        "fd",
        "bat",
        "exa",
        "eza",
        "export",
        "set",
        "unset",
        "alias",
        "history",
        "wait",
    ]
)
_DRAFT_PROGRAMS = frozenset(
    ["touch", "mkdir", "rmdir", "cp", "mv", "ln", "tee", "patch", "chmod", "chown", "install"]
)
_EXEC_PROGRAMS = frozenset(
    [
        "pytest",
        "py.test",
        "python",
        "python3",
        "python2",
        "ipython",
        "node",
        "deno",
        "bun",
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "make",
        "cmake",
        "ninja",
        "cargo",
        "go",
        "tox",
        "nox",
        "mvn",
        "gradle",
        "gradlew",
        "uv",
        "uvx",
        "pip",
        "pip3",
        "pipx",
        "poetry",
        "hatch",
        "pdm",
        "ruff",
        "mypy",
        "pyright",
        "black",
        "isort",
        "flake8",
        "pylint",
        "eslint",
        "prettier",
        "tsc",
        "jest",
        "vitest",
        "mocha",
        "bundle",
        "rake",
        "rspec",
        "dotnet",
        "swift",
        "swiftc",
        "javac",
        "java",
        "gcc",
        "g++",
        "cc",
        "clang",
        "clang++",
        "rustc",
        "ruby",
        "perl",
        "php",
        "R",
        "Rscript",
        "julia",
        "bazel",
        "meson",
        "pre-commit",
        "coverage",
        "sh",
        "bash",
        "zsh",
        "dash",
        "ksh",
        "fish",
        "source",
        ".",
        "docker",
        "docker-compose",
        "podman",
        "kill",
        "pkill",
        "timeout",
    ]
)
_SHELLS = frozenset(["sh", "bash", "zsh", "dash", "ksh", "fish"])
_WRAPPERS = frozenset(
    [
        "sudo",
        "doas",
        "nohup",
        "nice",
        "ionice",
        "time",
        "command",
        "builtin",
        "exec",
        "stdbuf",
        "caffeinate",
    ]
)
_DESTROY_PROGRAMS = frozenset(
    [
        "rm",
        "shred",
        "wipefs",
        "mkfs",
        "fdisk",
        "sfdisk",
        "parted",
        "dd",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "truncate",
        "srm",
    ]
)
_PUBLISH_PROGRAMS = frozenset(
    [
        "scp",
        "rsync",
        "sftp",
        "ftp",
        "twine",
        "vercel",
        "netlify",
        "flyctl",
        "fly",
        "firebase",
        "heroku",
        "surge",
        "serverless",
        "sls",
    ]
)
_SQL_DESTROY = re.compile(
    r"(?i)\b(drop\s+(table|database|schema)|truncate\s+table|delete\s+from)\b"
)


def _prog(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _is_assignment(word: str) -> bool:
    return bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word))


def _git(args: list[str]) -> str:
    # skip global options such as -C dir, -c k=v, --no-pager
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    if i >= len(args):
        return "read"
    sub, rest = args[i], args[i + 1 :]
    flags = set(rest)
    if sub == "push":
        return "publish"
    if sub in ("commit", "merge", "rebase", "tag", "cherry-pick", "revert", "am", "pull"):
        return "commit"
    if sub == "reset" and "--hard" in flags:
        return "destroy"
    if sub == "clean" and any(f.startswith("-") and ("f" in f or f == "--force") for f in rest):
        return "destroy"
    if sub == "branch" and ("-D" in flags or ("--delete" in flags and "--force" in flags)):
        return "destroy"
    if sub in ("checkout", "restore") and ("--" in flags or "." in flags or "-f" in flags):
        return "destroy"
    if sub == "stash" and rest[:1] in (["drop"], ["clear"]):
        return "destroy"
    if sub in ("filter-branch", "filter-repo", "prune") or (sub == "reflog" and "expire" in flags):
        return "destroy"
    if sub in (
        "status",
        "diff",
        "log",
        "show",
        "blame",
        "grep",
        "rev-parse",
        "ls-files",
        "ls-tree",
        "remote",
        "fetch",
        "describe",
        "shortlog",
        "reflog",
        "config",
        "help",
        "version",
        "branch",
        "tag",
    ):
        return "read"
    if sub in (
        "add",
        "stash",
        "checkout",
        "switch",
        "restore",
        "mv",
        "rm",
        "init",
        "clone",
        "worktree",
        "apply",
    ):
        return "draft"
    return "execute"


def _kubectl(args: list[str]) -> str:
    words = [a for a in args if not a.startswith("-")]
    sub = words[0] if words else ""
    if sub in ("delete", "drain", "cordon", "replace") or (sub == "rollout" and "undo" in words):
        return "destroy"
    if sub in (
        "apply",
        "create",
        "patch",
        "edit",
        "scale",
        "set",
        "rollout",
        "label",
        "annotate",
        "run",
        "expose",
        "exec",
        "cp",
        "taint",
    ):
        return "publish"
    if sub in (
        "get",
        "describe",
        "logs",
        "explain",
        "top",
        "version",
        "api-resources",
        "config",
        "diff",
        "auth",
    ):
        return "read"
    return "publish"


def _words(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


def _command_class(argv: list[str]) -> tuple[str, list[str]]:
    """Class of one simple command, plus any nested command strings to classify too."""
    while argv and _is_assignment(argv[0]):
        argv = argv[1:]
    if not argv:
        return "read", []
    prog, args = _prog(argv[0]), argv[1:]
    nested: list[str] = []
    if prog in _WRAPPERS or prog in ("env", "xargs", "timeout", "watch", "nice"):
        rest = list(args)
        while rest and (rest[0].startswith("-") or _is_assignment(rest[0])):
            rest = rest[1:]
        if prog == "timeout" and rest:
            rest = rest[1:]
        if not rest:
            return ("read" if prog in ("env", "time") else "execute"), []
        inner, more = _command_class(rest)
        if prog in ("sudo", "doas") and inner == "read":
            inner = "execute"
        return inner, more
    if prog in _SHELLS or prog == "eval":
        if prog == "eval":
            return "execute", [" ".join(args)]
        if "-c" in args:
            i = args.index("-c")
            if i + 1 < len(args):
                return "execute", [args[i + 1]]
        return "execute", []
    if prog == "git":
        return _git(args), nested
    if prog in _DESTROY_PROGRAMS or prog.startswith("mkfs"):
        return "destroy", nested
    if prog == "find":
        if "-delete" in args or any(
            a in ("-exec", "-execdir", "-ok")
            and i + 1 < len(args)
            and _prog(args[i + 1]) in _DESTROY_PROGRAMS
            for i, a in enumerate(args)
        ):
            return "destroy", nested
        if "-exec" in args or "-execdir" in args:
            i = args.index("-exec") if "-exec" in args else args.index("-execdir")
            tail = [a for a in args[i + 1 :] if a not in (";", "+", "\\;", "{}")]
            return _command_class(tail)[0], nested
        return "read", nested
    if prog == "sed" or prog == "perl":
        if any(a == "-i" or a.startswith("-i") or a == "--in-place" for a in args):
            return "draft", nested
        return ("read" if prog == "sed" else "execute"), nested
    if prog in ("curl", "wget", "http", "httpie"):
        sends = {
            "-d",
            "--data",
            "--data-binary",
            "--data-raw",
            "-F",
            "--form",
            "-T",
            "--upload-file",
            "--post-data",
            "--post-file",
        }
        method = next(
            (args[i + 1].upper() for i, a in enumerate(args[:-1]) if a in ("-X", "--request")), ""
        )
        if method in ("DELETE",):
            return "destroy", nested
        if sends.intersection(args) or method in ("POST", "PUT", "PATCH"):
            return "publish", nested
        return "read", nested
    if prog == "kubectl" or prog == "oc":
        return _kubectl(args), nested
    if prog == "helm":
        w = _words(args)
        sub = w[0] if w else ""
        if sub in ("uninstall", "delete", "rollback"):
            return "destroy", nested
        if sub in ("install", "upgrade", "push", "package"):
            return "publish", nested
        return "read", nested
    if prog in ("terraform", "tofu", "pulumi"):
        w = _words(args)
        sub = w[0] if w else ""
        if sub in ("apply", "destroy", "up", "import", "taint") or (
            sub == "state" and any(x in w for x in ("rm", "mv", "push", "replace-provider"))
        ):
            return "destroy", nested
        if sub == "state":
            return "read", nested
        if sub in (
            "plan",
            "validate",
            "fmt",
            "show",
            "output",
            "version",
            "providers",
            "graph",
            "preview",
            "init",
        ):
            return "read" if sub != "init" else "execute", nested
        return "destroy", nested
    if prog == "gh":
        w = _words(args)
        head = " ".join(w[:2])
        if head in (
            "release create",
            "release upload",
            "release edit",
            "pr create",
            "pr merge",
            "pr comment",
            "pr review",
            "issue create",
            "issue comment",
            "repo create",
            "gist create",
            "workflow run",
            "pr edit",
            "issue edit",
        ):
            return "publish", nested
        if head in ("repo delete", "release delete", "issue delete", "run cancel"):
            return "destroy", nested
        if w[:1] == ["api"]:
            method = next(
                (args[i + 1].upper() for i, a in enumerate(args[:-1]) if a in ("-X", "--method")),
                "GET",
            )
            return (
                "read" if method == "GET" else "destroy" if method == "DELETE" else "publish"
            ), nested
        return "read", nested
    if prog in (
        "npm",
        "pnpm",
        "yarn",
        "cargo",
        "poetry",
        "gem",
        "docker",
        "podman",
        "hatch",
        "flit",
        "uv",
        "dotnet",
    ):
        w = _words(args)
        sub = w[0] if w else ""
        if sub in ("publish", "push", "upload") or (
            prog == "dotnet" and sub == "nuget" and "push" in w
        ):
            return "publish", nested
        if prog in ("docker", "podman") and (
            sub in ("rm", "rmi", "kill")
            or w[:2]
            in (
                ["system", "prune"],
                ["volume", "rm"],
                ["volume", "prune"],
                ["image", "prune"],
                ["container", "prune"],
            )
        ):
            return "destroy", nested
        if prog == "npm" and sub in ("unpublish", "deprecate"):
            return "destroy", nested
        return "execute", nested
    if prog in ("aws", "gcloud", "az", "doctl", "stripe"):
        w = _words(args)
        text = " ".join(w)
        if re.search(
            r"\b(run-instances|instances create|vm create|droplet create|create-db-instance"
            r"|payment|charge|transfer|payout|invoices? create|subscriptions? create|purchase)",
            text,
        ):
            return "spend", nested
        if re.search(r"\b(delete|terminate|rm|remove|destroy|drop)", text):
            return "destroy", nested
        if re.search(r"\b(deploy|put|cp|sync|create|update|publish|invoke)\b", text):
            return "publish", nested
        return "read", nested
    if prog in ("psql", "mysql", "sqlite3", "mongo", "mongosh", "redis-cli"):
        text = " ".join(args)
        if _SQL_DESTROY.search(text) or re.search(r"(?i)\b(flushall|flushdb|dropDatabase)\b", text):
            return "destroy", nested
        return "execute", nested
    if prog in ("crontab",) and "-r" in args:
        return "destroy", nested
    if prog in _PUBLISH_PROGRAMS:
        return "publish", nested
    if prog in ("ssh",):
        return "publish", nested
    if prog in _READ_PROGRAMS:
        return "read", nested
    if prog in _DRAFT_PROGRAMS:
        return "draft", nested
    if prog in _EXEC_PROGRAMS or argv[0].startswith("./") or prog.endswith((".sh", ".py")):
        return "execute", nested
    return "unknown", nested


def _substitutions(command: str) -> tuple[str, list[str]]:
    """Cut ``$(…)`` and backtick substitutions outside single quotes out of ``command``.

    Returns the command with each substitution replaced by a placeholder word and the
    list of substituted command strings (classified separately).
    """
    out: list[str] = []
    inner: list[str] = []
    i, n = 0, len(command)
    quote = ""
    while i < n:
        ch = command[i]
        if ch == "\\" and quote != "'" and i + 1 < n:
            out.append(command[i : i + 2])
            i += 2
            continue
        if quote == "'":
            if ch == "'":
                quote = ""
            out.append(ch)
            i += 1
            continue
        if ch in "'\"" and (not quote or quote == ch):
            if ch == "'" and quote == '"':
                out.append(ch)
                i += 1
                continue
            quote = "" if quote == ch else ch
            out.append(ch)
            i += 1
            continue
        if ch == "$" and i + 1 < n and command[i + 1] == "(":
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(command[j], 0)
                j += 1
            inner.append(command[i + 2 : j - 1] if depth == 0 else command[i + 2 :])
            out.append("__subst__")
            i = j
            continue
        if ch == "`":
            j = command.find("`", i + 1)
            j = n if j < 0 else j
            inner.append(command[i + 1 : j])
            out.append("__subst__")
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), inner


_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&", "\n"})


def _simple_commands(command: str) -> list[tuple[list[str], list[str]]]:
    """Split into simple commands: (argv, redirection targets) pairs."""
    lex = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    cmds: list[tuple[list[str], list[str]]] = []
    argv: list[str] = []
    targets: list[str] = []
    tokens = list(lex)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok and all(c in "();<>|&" for c in tok):
            if "<" in tok or ">" in tok:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
                if argv and argv[-1].isdigit():
                    argv.pop()  # the fd number of `2>file` is not an argument
                if ">" in tok and not tok.endswith("&") and nxt:
                    targets.append(nxt)  # `>&1` / `2>&-` duplicate a descriptor: no file
                i += 2
                continue
            if argv or targets:
                cmds.append((argv, targets))
            argv, targets = [], []
            i += 1
            continue
        argv.append(tok)
        i += 1
    if argv or targets:
        cmds.append((argv, targets))
    return cmds


def classify_command(command: str, _depth: int = 0) -> list[Part]:
    """Classify a shell command into parts, one per simple command (recursively).

    Examples
    --------
    >>> [p.action for p in classify_command('echo "rm -rf /"')]
    ['read']
    >>> [p.action for p in classify_command("cd build && rm -rf out")]
    ['read', 'destroy']
    >>> [p.action for p in classify_command("curl -fsSL https://x.sh | sh")]
    ['read', 'destroy']
    """
    if _depth > 8:
        return [Part("unknown", command)]
    text, substituted = _substitutions(command)
    try:
        commands = _simple_commands(text)
    except ValueError as e:  # unbalanced quotes: the shell would refuse it too
        return [Part("unknown", f"{command} (unparsable: {e})")]
    parts: list[Part] = []
    fetched = False
    for argv, targets in commands:
        shown = " ".join(argv)
        action, nested = _command_class(argv) if argv else ("read", [])
        prog = _prog(argv[0]) if argv else ""
        if prog in ("curl", "wget") and action == "read":
            fetched = True
        elif fetched and (
            prog in _SHELLS or prog in ("python", "python3", "perl", "ruby", "node", "sudo", "bash")
        ):
            action = "destroy"  # remote code piped into an interpreter
            shown = f"… | {shown}"
        for t in targets:
            if t.startswith("/dev/") and t not in (
                "/dev/null",
                "/dev/stdout",
                "/dev/stderr",
                "/dev/tty",
            ):
                parts.append(Part("destroy", f"> {t}"))
            elif is_protected_path(t):
                parts.append(Part("protected", f"> {t}"))
            elif t not in ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"):
                parts.append(Part("draft", f"> {t}"))
        for path in argv[1:]:
            if is_protected_path(path) and action in ("read", "draft", "execute"):
                parts.append(Part("protected", f"{prog} {path}"))
                break
        parts.append(Part(action, shown))
        for inner in nested:
            parts.extend(classify_command(inner, _depth + 1))
    for inner in substituted:
        parts.extend(classify_command(inner, _depth + 1))
    return parts or [Part("read", command)]


def classify_tool_call(
    tool_name: str, tool_input: Mapping[str, Any], tools: Mapping[str, str] | None = None
) -> list[Part]:
    """Classify one tool call of a coding agent (Claude Code tool names).

    ``tools`` maps extra tool-name patterns (``fnmatch``) to classes and is consulted first.

    Examples
    --------
    >>> classify_tool_call("Edit", {"file_path": "/repo/src/a.py"})
    [Part(action='draft', text='Edit /repo/src/a.py')]
    >>> classify_tool_call("Write", {"file_path": "/repo/.env"})[0].action
    'protected'
    >>> classify_tool_call("mcp__github__create_issue", {"title": "x"})[0].action
    'unknown'
    """
    for pattern, action in (tools or {}).items():
        if fnmatch.fnmatchcase(tool_name, pattern):
            return [Part(action, tool_name)]
    path = next((str(tool_input[k]) for k in _PATH_KEYS if isinstance(tool_input.get(k), str)), "")
    if tool_name in READ_TOOLS:
        if path and is_protected_path(path):
            return [Part("protected", f"{tool_name} {path}")]
        return [Part("read", f"{tool_name} {path}".strip())]
    if tool_name in EDIT_TOOLS:
        if path and is_protected_path(path):
            return [Part("protected", f"{tool_name} {path}")]
        return [Part("draft", f"{tool_name} {path}".strip())]
    if tool_name == "Bash":
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            return [Part("unknown", "Bash without a command")]
        return classify_command(command)
    return [Part("unknown", tool_name)]


#: Claude Code permission rules per action class (settings.json ``permissions`` syntax).
CLAUDE_CODE_RULES: dict[str, tuple[str, ...]] = {
    "read": (
        "Read",
        "Grep",
        "Glob",
        "LS",
        "WebFetch",
        "WebSearch",
        "Bash(ls:*)",
        "Bash(cat:*)",
        "Bash(head:*)",
        "Bash(tail:*)",
        "Bash(grep:*)",
        "Bash(rg:*)",
        "Bash(wc:*)",
        "Bash(pwd)",
        "Bash(git status:*)",
        "Bash(git diff:*)",
        "Bash(git log:*)",
        "Bash(git show:*)",
    ),
    "draft": (
        "Edit",
        "Write",
        "MultiEdit",
        "NotebookEdit",
        "Bash(mkdir:*)",
        "Bash(touch:*)",
        "Bash(git add:*)",
        "Bash(git checkout -b:*)",
        "Bash(git switch:*)",
    ),
    "execute": (
        "Bash(pytest:*)",
        "Bash(python -m pytest:*)",
        "Bash(make test:*)",
        "Bash(make:*)",
        "Bash(npm test:*)",
        "Bash(npm run:*)",
        "Bash(cargo test:*)",
        "Bash(cargo build:*)",
        "Bash(go test:*)",
        "Bash(go build:*)",
        "Bash(ruff:*)",
        "Bash(mypy:*)",
    ),
    "commit": (
        "Bash(git commit:*)",
        "Bash(git merge:*)",
        "Bash(git rebase:*)",
        "Bash(git tag:*)",
        "Bash(git cherry-pick:*)",
        "Bash(git revert:*)",
        "Bash(git pull:*)",
    ),
    "protected": (
        "Read(./.env)",
        "Read(./.env.*)",
        "Read(~/.ssh/**)",
        "Read(~/.aws/**)",
        "Edit(./.env)",
        "Edit(./.env.*)",
        "Edit(./.git/**)",
        "Edit(./.github/workflows/**)",
        "Edit(./.claude/settings*.json)",
        "Edit(**/*.pem)",
        "Edit(**/*.key)",
        "Edit(~/.ssh/**)",
        "Write(./.env)",
        "Write(./.git/**)",
    ),
    "publish": (
        "Bash(git push:*)",
        "Bash(gh release:*)",
        "Bash(gh pr create:*)",
        "Bash(gh pr merge:*)",
        "Bash(npm publish:*)",
        "Bash(cargo publish:*)",
        "Bash(twine upload:*)",
        "Bash(docker push:*)",
        "Bash(kubectl apply:*)",
        "Bash(helm install:*)",
        "Bash(helm upgrade:*)",
        "Bash(scp:*)",
        "Bash(rsync:*)",
        "Bash(ssh:*)",
    ),
    "spend": (
        "Bash(aws ec2 run-instances:*)",
        "Bash(gcloud compute instances create:*)",
        "Bash(az vm create:*)",
        "Bash(stripe:*)",
    ),
    "destroy": (
        "Bash(rm:*)",
        "Bash(shred:*)",
        "Bash(dd:*)",
        "Bash(mkfs:*)",
        "Bash(git reset --hard:*)",
        "Bash(git clean:*)",
        "Bash(kubectl delete:*)",
        "Bash(helm uninstall:*)",
        "Bash(terraform apply:*)",
        "Bash(terraform destroy:*)",
        "Bash(docker system prune:*)",
    ),
}
