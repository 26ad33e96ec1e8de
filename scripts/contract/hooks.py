"""Schemathesis hooks for the IGNY8 contract run (loaded through schemathesis.toml).

Only one hook: `filter_failure`, which drops a `positive_data_acceptance`
(ST202) failure when the server refused a schema-valid request for a reason
JSON Schema cannot express: the server's *state*, or the content of an
uploaded CSV file. No fix to the OpenAPI document could make the check pass
on these; they are the API's business rules, listed in docs/api.md:

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
- LIMIT_REACHED: the account has 50 author profiles or strategies already
  (the run creates them until it has).
- NOT_CONFIGURED: `test_openai` before the account saved provider settings.
- POSITION_NOT_REACHED: a `min_position` beyond the last event written (the
  log's head is the server's state; a position a command answered is never
  beyond it).
- INVALID_CRON, CRON_NEVER_FIRES: an automation rule's `cron` is a string the
  schema describes by its shape (five fields of the characters cron uses); the
  field ranges (`0 0 0 0 0` names day 0), steps, names and whether the
  expression ever fires (`0 0 30 2 *`) are the calendar's, which no JSON
  Schema can state.
- NO_KEYWORD_COLUMN, NOT_A_TEXT_FILE, INVALID_ENCODING, TOO_MANY_ROWS: the
  `text/csv` body of POST /api/v1/planner/keywords/import_csv/ is a string
  whose CSV content (a header naming a keyword column, UTF-8 text, a row
  limit) no JSON Schema can describe. EMPTY_FILE is *not* dropped: the spec
  can say `minLength: 1`.

A second filter, for one limitation of the generator: its coverage phase
builds "positive" bodies from each property's schema and does not honour the
body's own cross-field rules (`oneOf`: an admin key takes no site list;
either a sector or a list of keywords to cluster). A positive-data failure
whose body does *not* validate against the operation's full documented body
schema (checked here with jsonschema, Draft 2020-12) was never valid data and
is dropped; a body that does validate and is refused stays a failure.

A third, for the stateful phase: it infers links from response fields by
name, and a nullable field (a strategy's `sector_id: null`) is sent on as the
path parameter `None`. A positive-data failure whose path parameters do not
validate against their documented schemas (`format: uuid`, checked with the
format checker) was never valid data either and is dropped.

A fourth, for negative data (ST201): a schema-violating body larger than
the server's body limit (`IGNY8_MAX_BODY_BYTES`, 1 MiB) is refused with 413
PAYLOAD_TOO_LARGE before it is parsed — a correct refusal, documented on every
route with a body, that schemathesis does not count among the rejection
statuses it expects. Any other answer to invalid data stays a failure.

Everything else stays a failure: a 422 such as INVALID_ROLE, INVALID_NAME,
INVALID_EMAIL, INVALID_PASSWORD or EMPTY_FILE means the spec lets through a value the
server refuses (missing `enum`, `minLength`, `format`, ...), which is a spec bug
to fix. Dropped failures are counted by schemathesis in its summary.
"""

from __future__ import annotations

import json
import os

import jsonschema
import schemathesis

# Every dropped failure is written here (one JSON line: reason, code,
# operation), so run.sh can say what was dropped and why.
DROPPED_LOG = os.environ.get("IGNY8_CONTRACT_DROPPED")


def _dropped(reason: str, code, case) -> bool:
    if DROPPED_LOG:
        with open(DROPPED_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"reason": reason, "error_code": code,
                                "operation": f"{case.method} {case.operation.path}"}) + "\n")
    return False

STATE_DEPENDENT_REFUSALS = frozenset(
    {
        "SITE_LIMIT",
        "SECTOR_LIMIT",
        "UNKNOWN_SITE",
        "WRONG_PASSWORD",
        "IDEMPOTENCY_KEY_REUSED",
        "POSITION_NOT_REACHED",
        "LIMIT_REACHED",
        "NOT_CONFIGURED",
        "INVALID_CRON",
        "CRON_NEVER_FIRES",
        "NO_KEYWORD_COLUMN",
        "NOT_A_TEXT_FILE",
        "INVALID_ENCODING",
        "TOO_MANY_ROWS",
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


def _body_is_valid(case) -> bool:
    """Whether the case's JSON body validates against the documented body schema."""
    raw = case.operation.schema.raw_schema
    op = raw.get("paths", {}).get(case.operation.path, {}).get(case.method.lower(), {})
    schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    body = case.body
    if schema is None or not isinstance(body, (dict, list)):
        return True
    # The body schema's `#/components/...` references resolve inside this root.
    root = dict(schema)
    root["components"] = raw.get("components", {})
    return jsonschema.Draft202012Validator(root).is_valid(body)


def _path_is_valid(case) -> bool:
    """Whether every path parameter validates against its documented schema."""
    raw = case.operation.schema.raw_schema
    item = raw.get("paths", {}).get(case.operation.path, {})
    params = list(item.get("parameters", [])) + list(
        item.get(case.method.lower(), {}).get("parameters", [])
    )
    values = case.path_parameters or {}
    for param in params:
        if param.get("in") != "path" or param.get("name") not in values:
            continue
        schema = param.get("schema")
        if schema is None:
            continue
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        if not validator.is_valid(values[param["name"]]):
            return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure except a positive-data rejection that is a business
    rule, or of a body that breaks the documented schema after all."""
    code = _error_code(response)
    if getattr(failure, "code", None) == "ST201":
        if getattr(response, "status_code", None) == 413 and code == "PAYLOAD_TOO_LARGE":
            return _dropped("body over the size limit refused with 413", code, case)
        return True
    if getattr(failure, "code", None) != "ST202":
        return True
    if code in STATE_DEPENDENT_REFUSALS:
        return _dropped("state-dependent refusal", code, case)
    if not _body_is_valid(case):
        return _dropped("body breaks the documented schema", code, case)
    if not _path_is_valid(case):
        return _dropped("path parameter breaks the documented schema", code, case)
    return True
