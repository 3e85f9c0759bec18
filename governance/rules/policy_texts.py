"""The policy a build was made under, kept in the catalogue by its sha256 (migration 0011).

A build is judged later (verify, governance/standing) by the exact text it was built under, never
by whichever file of that name the caller's policy search path happens to find: a changed or
shadowing file is reported as a difference, and marks nothing stale.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from stylevault.governance.catalogue.models import utcnow
from stylevault.governance.catalogue.output_models import IndexBuild, PolicyText
from stylevault.governance.errors import BadInput
from stylevault.governance.rules.policy import Policy
from stylevault.governance.rules.policy_files import load_policy


def record(session: Session, policy: Policy) -> None:
    """Keep `policy`'s text by its sha256 (once: two builds under one text share the row)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(PolicyText.__table__)
        .values(sha256=policy.hash, name=policy.name, text=policy.text, recorded_at=utcnow())
        .on_conflict_do_nothing()
    )


def built_under(session: Session, build: IndexBuild) -> Policy | str:
    """The policy `build` was made under, from its recorded text; for a build made before texts were
    recorded, the file of its name while its sha256 still matches. Otherwise why it cannot be judged."""
    text = session.get(PolicyText, build.policy_sha256)
    if text is not None:
        shown = f"policy {build.policy} as recorded at build (sha256 {build.policy_sha256[:12]})"
        return Policy.from_bytes(text.text.encode("utf-8"), shown, build.policy)
    try:
        policy = load_policy(build.policy)
    except BadInput:
        return f"policy {build.policy} was not recorded at build and can no longer be found"
    if policy.hash != build.policy_sha256:
        was, now = build.policy_sha256[:12], policy.hash[:12]
        return f"policy {build.policy} was not recorded at build and its file changed (sha256 {was} -> {now})"
    return policy


def file_difference(build: IndexBuild) -> str | None:
    """How the policy file the search path finds now differs from the one `build` was made under."""
    try:
        policy = load_policy(build.policy)
    except BadInput as exc:
        return f"policy {build.policy}: the file of that name cannot be read now ({exc}); judged as built"
    if policy.hash == build.policy_sha256:
        return None
    return (
        f"policy {build.policy}: the file found now ({policy.path}, sha256 {policy.hash[:12]}) differs from "
        f"the one the index was built under (sha256 {build.policy_sha256[:12]}); judged as built"
    )
