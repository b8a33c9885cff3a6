"""The repository's `.github/tokentrail.yml` (DESIGN §7), read from the default branch: budget limits, how the
comment behaves, the check run, and `people:` (the names people use in usage records → their GitHub logins,
DESIGN §2). Pure.

`parse_repo_config` never raises: a broken file is reported as readable errors (key path and line) for the check
run, and the keys that are valid still apply (an unrelated typo must not switch a budget off).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

CONFIG_PATH = ".github/tokentrail.yml"
DEFAULT_WARN_AT = Decimal("0.8")
# Limits beyond these are mistakes (and would not even format as money): refused as invalid, never a crash.
MAX_USD_LIMIT = Decimal(10**9)
MAX_TOKENS_LIMIT = 10**15
MAX_CONFIG_CHARS = 64 * 1024


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads `true` as 1; a boolean where a number belongs is a mistake worth reporting.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Number = BeforeValidator(_not_bool)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetConfig(_Section):
    max_cost_per_pr: Annotated[Decimal | None, Number] = Field(default=None, ge=0, le=MAX_USD_LIMIT)  # USD
    max_cost_per_changed_line: Annotated[Decimal | None, Number] = Field(default=None, ge=0, le=MAX_USD_LIMIT)
    max_tokens_per_pr: Annotated[int | None, Number] = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)
    warn_at: Annotated[Decimal, Number] = Field(default=DEFAULT_WARN_AT, gt=0, le=1)  # fraction of any limit
    exempt_labels: list[str] = Field(default_factory=list)

    @field_validator("exempt_labels", mode="before")
    @classmethod
    def _one_label(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # `exempt_labels: skip-budget` means a list of one


class CommentConfig(_Section):
    behavior: Literal["update", "new", "off"] = "update"
    min_cost: Annotated[Decimal, Number] = Field(default=Decimal("0.01"), ge=0, le=MAX_USD_LIMIT)  # DESIGN §7: 1 ¢

    @field_validator("behavior", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads an unquoted `off` as false


class DashboardConfig(_Section):
    # show: per-person rows (sorted by name, outcomes beside spend); aggregate: team medians only, no person named
    # on the dashboard, in the comment, the API or the CSV. None: the server's TOKENTRAIL_DASHBOARD_PEOPLE.
    people: Literal["show", "aggregate"] | None = None


_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
MAX_IDENTITY_CHARS = 255  # an actor is at most this long (DESIGN §2 limits)


def person_key(actor: str) -> str:
    """How an actor (an e-mail, a local user name) is looked up in `people:` and in what GitHub told us: trimmed
    and lower-cased, so `Alice@Acme.dev` is `alice@acme.dev`."""
    return actor.strip().lower()


def _identity(value: str) -> str:
    key = person_key(value)
    if not key or len(key) > MAX_IDENTITY_CHARS:
        raise ValueError(f"expected an e-mail or a user name of 1 to {MAX_IDENTITY_CHARS} characters")
    return key


def _github_login(value: str) -> str:
    login = value.strip().removeprefix("@")
    if not _GITHUB_LOGIN.match(login):
        raise ValueError(f"not a GitHub login: {value!r}")
    return login


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    comment: CommentConfig = Field(default_factory=CommentConfig)
    check_run: bool = True
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    # E-mail or local user name (as usage records name their actor) → GitHub login; keys are `person_key`s.
    people: dict[Annotated[str, AfterValidator(_identity)], Annotated[str, AfterValidator(_github_login)]] = Field(
        default_factory=dict
    )

    @field_validator("budget", "comment", "people", "dashboard", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value  # `budget:` with nothing under it is an empty section


@dataclass(frozen=True)
class ConfigResult:
    config: RepoConfig = field(default_factory=RepoConfig)
    errors: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


Nodes: TypeAlias = dict[tuple[int | str, ...], tuple[yaml.Node, yaml.Node]]


def _index(node: yaml.Node | None, path: tuple[int | str, ...] = (), into: Nodes | None = None) -> Nodes:
    """(key node, value node) by key path, to name the line of an error (indexed once: a file may hold thousands
    of errors). Three levels deep is all a valid file has."""
    into = {} if into is None else into
    if len(path) < 3 and isinstance(node, yaml.MappingNode):
        for key, value in node.value:  # a duplicate key overwrites, as PyYAML's loader does
            if isinstance(key, yaml.ScalarNode):
                into[(*path, key.value)] = (key, value)
                _index(value, (*path, key.value), into)
    elif len(path) < 3 and isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            into[(*path, position)] = (node, item)
    return into


def _at(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _line(node: yaml.Node | None) -> str:
    return f" (line {_at(node)})" if node is not None else ""


def _message(error: Mapping[str, Any], nodes: Nodes) -> tuple[int, str]:
    """(line, "budget.max_cost (line 4): unknown key (did you mean max_cost_per_pr?)")."""
    loc = tuple(error["loc"])
    is_key = loc[-1:] == ("[key]",)  # a key of `people:` that is no e-mail or name: named by the key itself
    if is_key:
        loc = (*loc[:-2], str(loc[-2]))
    unknown = error["type"] in ("extra_forbidden", "invalid_key")  # invalid_key: a key that is not a string
    if unknown:
        loc = (*loc[:-1], str(loc[-1]))
    path = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    key, value = nodes.get(loc, (None, None))
    if unknown:
        known: Iterable[str] = (BudgetConfig if loc[0] == "budget" else CommentConfig).model_fields
        if len(loc) == 1:
            known = RepoConfig.model_fields
        guess = difflib.get_close_matches(str(loc[-1]), list(known), n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        return _at(key), f"{path}{_line(key)}: unknown key{hint}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("model_type", "dict_type"):
        msg = "expected a mapping of keys"
    elif loc[0] == "people" and error["type"] == "string_type":
        msg = "expected an e-mail or a user name" if is_key else "expected a GitHub login"
    return _at(value or key), f"{path}{_line(value or key)}: {msg}"


def _drop(data: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    """Remove the key an error is about (the deepest mapping key on its path), so the rest can still apply."""
    node: Any = data
    for depth, part in enumerate(loc):
        if not isinstance(node, dict) or part not in node:
            return
        if depth == len(loc) - 1 or not isinstance(node[part], dict):
            del node[part]
            return
        node = node[part]


def _load(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one parse."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


def parse_repo_config(text: str | None) -> ConfigResult:
    """`.github/tokentrail.yml` → config and readable errors. Absent or empty: defaults, no errors."""
    if text is None or not text.strip():
        return ConfigResult()
    if len(text) > MAX_CONFIG_CHARS:  # a budget file is a dozen lines; a huge one would only cost the worker time
        return ConfigResult(errors=[f"file too large: {len(text):,} characters, at most {MAX_CONFIG_CHARS:,}"])
    try:
        root, data = _load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return ConfigResult(errors=[f"invalid YAML{where}: {exc.problem or exc.context}"])
    except yaml.YAMLError as exc:
        return ConfigResult(errors=[f"invalid YAML: {exc}"])
    if data is None:
        return ConfigResult()
    if not isinstance(data, dict):
        expected = ", ".join(RepoConfig.model_fields)
        return ConfigResult(errors=[f"top level{_line(root)}: expected a mapping with {expected}"])
    # Copied two levels deep (all `_drop` edits): a YAML alias may share one mapping between sections.
    data = {str(key): dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    try:
        return ConfigResult(config=RepoConfig.model_validate(data))
    except ValidationError as exc:
        nodes = _index(root)
        errors = [text for _, text in sorted(_message(error, nodes) for error in exc.errors())]
        for error in exc.errors():
            _drop(data, tuple(error["loc"]))
    try:
        return ConfigResult(config=RepoConfig.model_validate(data), errors=errors)
    except ValidationError:  # pragma: no cover - dropping every offending key leaves a valid document
        return ConfigResult(errors=errors)
