"""Budgets (DESIGN §7): the repository's `.github/tokentrail.yml` and the verdict of a PR's spend against it.
The same file maps the names people use in usage records to their GitHub logins (`people:`, DESIGN §2).

Pure. `parse_repo_config` never raises: a broken file is reported as readable errors (key path and line) for the
check run, and the keys that are valid still apply (an unrelated typo must not switch a budget off). Reasons are
human text, so the small number formats they use live here and `render` reuses them as template filters.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

Status: TypeAlias = Literal["pass", "warn", "fail", "none"]
Conclusion: TypeAlias = Literal["success", "neutral", "failure"]
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
    # E-mail or local user name (as usage records name their actor) → GitHub login; keys are `person_key`s.
    people: dict[Annotated[str, AfterValidator(_identity)], Annotated[str, AfterValidator(_github_login)]] = Field(
        default_factory=dict
    )

    @field_validator("budget", "comment", "people", mode="before")
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


@dataclass(frozen=True, slots=True)
class Limits:
    max_cost_per_pr: Decimal | None = None
    max_cost_per_changed_line: Decimal | None = None
    max_tokens_per_pr: int | None = None
    warn_at: Decimal = DEFAULT_WARN_AT

    @property
    def has_any(self) -> bool:
        return (self.max_cost_per_pr, self.max_cost_per_changed_line, self.max_tokens_per_pr) != (None,) * 3


def limits_with_overrides(
    config: RepoConfig,
    *,
    max_cost: Decimal | None = None,
    max_cost_per_changed_line: Decimal | None = None,
    max_tokens: int | None = None,
) -> Limits:
    """The repository's limits, each replaced by its override when given (API query parameters, the Action)."""
    overrides = {"max_cost": max_cost, "max_cost_per_changed_line": max_cost_per_changed_line, "max_tokens": max_tokens}
    for name, value in overrides.items():
        if value is not None and not (Decimal(value).is_finite() and value >= 0):
            raise ValueError(f"{name} must be non-negative")
        ceiling = MAX_TOKENS_LIMIT if name == "max_tokens" else MAX_USD_LIMIT
        if value is not None and value > ceiling:
            raise ValueError(f"{name} must be at most {ceiling:,}")
    b = config.budget
    return Limits(
        b.max_cost_per_pr if max_cost is None else max_cost,
        b.max_cost_per_changed_line if max_cost_per_changed_line is None else max_cost_per_changed_line,
        b.max_tokens_per_pr if max_tokens is None else max_tokens,
        b.warn_at,
    )


def format_usd(value: Decimal) -> str:
    """$12.48, $1,234.50; below $1 three significant digits ($0.0116, $0.50); $0.00."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 1 or value == 0:
        return f"{sign}${value.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    places = max(2, 2 - value.adjusted())  # adjusted() is the exponent of the first significant digit
    text = f"{value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{frac}"


def format_tokens(count: int) -> str:
    """312, 950 k, 8.2 M, 50 M, 1.2 B: three significant digits at most, no trailing '.0'."""
    if count < 1000:
        return str(count)
    for scale, unit in ((10**3, "k"), (10**6, "M"), (10**9, "B"), (10**12, "T")):
        scaled = Decimal(count) / scale
        shown = scaled.quantize(Decimal(1) if scaled >= 100 else Decimal("0.1"), ROUND_HALF_UP)
        if shown < 1000 or unit == "T":
            return f"{shown.normalize():f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_pct(fraction: Decimal) -> str:
    """0.71 → '71 %'. Never '100 %' below the limit nor '0 %' for some use, which would mislead at the edges."""
    pct = (fraction * 100).quantize(Decimal(1), ROUND_HALF_UP)
    if fraction < 1 and pct >= 100:
        pct = (fraction * 100).quantize(Decimal(1), ROUND_FLOOR)
    if fraction > 0 and pct == 0:
        return "<1 %"
    return f"{pct} %"


@dataclass(frozen=True, slots=True)
class LimitCheck:
    name: str  # the config key, e.g. "max_cost_per_pr"
    status: Literal["pass", "warn", "fail"]
    fraction: Decimal | None  # value / limit; None for a limit of 0
    reason: str


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    status: Status
    reasons: tuple[str, ...]  # worst first
    usage_fraction: Decimal | None  # the highest fraction of any limit
    checks: tuple[LimitCheck, ...] = ()


def _check(name: str, value: Decimal, limit: Decimal, shown: tuple[str, str], warn_at: Decimal) -> LimitCheck:
    fraction = value / limit if limit > 0 else None
    text, limit_text = shown
    if value > limit:
        return LimitCheck(name, "fail", fraction, f"{text} exceeds {name} {limit_text}")
    if fraction is not None and fraction >= warn_at:
        return LimitCheck(name, "warn", fraction, f"{text} is {format_pct(fraction)} of {name} {limit_text}")
    pct = f" ({format_pct(fraction)})" if fraction is not None else ""
    return LimitCheck(name, "pass", fraction, f"{text} within {name} {limit_text}{pct}")


def _usd_pair(value: Decimal, limit: Decimal, suffix: str = "") -> tuple[str, str]:
    text, limit_text = format_usd(value), format_usd(limit)
    if text == limit_text and value != limit:  # "$25.00 exceeds $25.00" would read as a bug
        text = f"${value.normalize():f}"
    return text + suffix, limit_text


def evaluate_budget(
    *,
    cost: Decimal,
    tokens: int,
    changed_lines: int,
    labels: Iterable[str],
    limits: Limits,
    exempt_labels: Iterable[str],
) -> BudgetVerdict:
    """pass / warn (≥ warn_at of a limit; reaching it exactly is not over) / fail (over a limit) / none.

    `none`: no limit set, an exempt label, or no limit applicable. The per-line limit does not apply to a PR with
    no changed lines (nothing to divide by); a reason says so.
    """
    if not limits.has_any:
        return BudgetVerdict("none", ("no budget limits set",), None)
    measured: list[tuple[str, Decimal, Decimal, tuple[str, str]]] = []
    notes: list[str] = []
    if (limit := limits.max_cost_per_pr) is not None:
        measured.append(("max_cost_per_pr", cost, limit, _usd_pair(cost, limit)))
    if (limit := limits.max_cost_per_changed_line) is not None and changed_lines > 0:
        per_line = cost / changed_lines
        shown = _usd_pair(per_line, limit, " per changed line")
        measured.append(("max_cost_per_changed_line", per_line, limit, shown))
    elif limit is not None:
        notes.append("max_cost_per_changed_line not applied: no changed lines")
    if (max_tokens := limits.max_tokens_per_pr) is not None:
        shown = (f"{format_tokens(tokens)} tokens", format_tokens(max_tokens))
        measured.append(("max_tokens_per_pr", Decimal(tokens), Decimal(max_tokens), shown))
    checks = [_check(*m, warn_at=limits.warn_at) for m in measured]
    rank = {"fail": 0, "warn": 1, "pass": 2}
    checks.sort(key=lambda c: (rank[c.status], -(c.fraction if c.fraction is not None else Decimal(0))))
    usage = max((c.fraction for c in checks if c.fraction is not None), default=None)
    reasons = tuple(c.reason for c in checks) + tuple(notes)
    exempt = {label.casefold() for label in exempt_labels}
    hits = sorted({label for label in labels if label.casefold() in exempt})
    if hits:
        return BudgetVerdict("none", (f"exempt: label {hits[0]}", *reasons), usage, tuple(checks))
    if not checks:
        return BudgetVerdict("none", reasons, usage)
    return BudgetVerdict(checks[0].status, reasons, usage, tuple(checks))


_CONCLUSIONS: dict[Status, Conclusion] = {"pass": "success", "none": "success", "warn": "neutral", "fail": "failure"}


def conclusion_for(status: Status) -> Conclusion:
    """The check run's conclusion: success under warn_at (or no budget), neutral between, failure over a limit."""
    return _CONCLUSIONS[status]
