"""Schemathesis hooks for the IGNY8 contract run (loaded through schemathesis.toml).

Only one hook: `filter_failure`, which drops a `positive_data_acceptance`
(ST202) failure when the server refused a schema-valid request for a reason
that depends on the server's *state*, not on the request's shape. JSON Schema
cannot express these, so no fix to the OpenAPI document could make the check
pass; they are the API's business rules, listed in docs/api.md:

- SITE_LIMIT: the plan's site limit is reached (depends on how many sites the
  account already has; the free plan allows one).
- SECTOR_LIMIT: the site already has 5 sectors.
- UNKNOWN_SITE: a well-formed site id that is not a site of the account (the
  same refusal as the 404 schemathesis already accepts, made a 422 because the
  id is inside the body).
- WRONG_PASSWORD: `current_password` does not match the stored one (like the
  401 INVALID_CREDENTIALS of login, which schemathesis accepts).
- IDEMPOTENCY_KEY_REUSED: the `Idempotency-Key` was used before with another
  request.

Everything else stays a failure: a 422 such as INVALID_ROLE, INVALID_NAME,
INVALID_EMAIL or INVALID_PASSWORD means the spec lets through a value the
server refuses (missing `enum`, `minLength`, `format`, ...), which is a spec bug
to fix. Dropped failures are counted by schemathesis in its summary.
"""

from __future__ import annotations

import schemathesis

STATE_DEPENDENT_REFUSALS = frozenset(
    {
        "SITE_LIMIT",
        "SECTOR_LIMIT",
        "UNKNOWN_SITE",
        "WRONG_PASSWORD",
        "IDEMPOTENCY_KEY_REUSED",
    }
)


def _error_code(response) -> str | None:
    try:
        body = response.json()
    except Exception:  # not JSON: keep the failure
        return None
    if isinstance(body, dict):
        code = body.get("error_code")
        return code if isinstance(code, str) else None
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure except a positive-data rejection that is a business rule."""
    if getattr(failure, "code", None) != "ST202":
        return True
    return _error_code(response) not in STATE_DEPENDENT_REFUSALS
