"""The words policies, reports and manifests share: why a member is not cleared (REASONS, in the order
they are checked, with REASON_TEXT) and what a user of an output owes for an image (OBLIGATIONS)."""

from __future__ import annotations

# Why a member of a style-set version is not cleared, in the order they are checked: the first that
# applies is the one reported. The last comes from `judge`, the others from `excluded_by_state`.
REASONS = (
    "not-approved",
    "licence-unknown",
    "licence-conflict",
    "licence-unverified",
    "opted-out",
    "data-mining-reserved",
    "expired",
    "licence-excluded",
)


REASON_TEXT = {
    "not-approved": "not approved by legal",
    "licence-unknown": "licence unknown (missing or unrecognised)",
    "licence-conflict": "sources disagree about the licence",
    "licence-unverified": "licence not verified by legal",
    "opted-out": "the rights holder opted out",
    "data-mining-reserved": "the file reserves data mining (IPTC PLUS)",
    "expired": "licence expired",
    "licence-excluded": "licence excluded by the policy",
}


# What a user of an output owes for each image that shaped it; carried into index manifests and
# run records so output review and attribution notices can see them.
OBLIGATIONS = {
    "attribution": "credit the creator and source and link the licence (CC BY 4.0 section 3(a))",
    "share-alike": "an adaptation must carry the same licence (CC BY-SA 4.0 section 3(b))",
    "non-commercial": "outputs must not be used for commercial advantage (CC BY-NC 4.0 section 1(i))",
    "no-derivatives": "outputs it shaped must not be shared (CC BY-ND 4.0 section 2(a)(1)(B))",
    "licence-notice": "keep the copyright and permission notice with the work",
    "contract-terms": "the contract's own terms apply: read them before using an output",
}


SETTLED_STATUSES = ("normalised", "verified")
