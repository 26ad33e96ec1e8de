#!/usr/bin/env python3
"""Group the failures of a schemathesis NDJSON report by check and by cause.

Usage: summarize.py REPORT.ndjson

Schemathesis prints every failing test case; this prints one line per distinct
cause instead, so that a run with thousands of failing cases reads as a short
list of bugs. A cause is:

- status_code_conformance: the status and `error_code` received, with the
  operations that answer it without documenting it;
- positive_data_acceptance / negative_data_rejection: the status and
  `error_code`, with the operations and one example request;
- response_schema_conformance: the operation, status and first line of the
  schema error;
- anything else: the operation, status and first line of the message.

Each group shows one reproducing request (method, path, query, headers other
than credentials, body) and the start of the answer.
"""

from __future__ import annotations

import base64
import collections
import json
import sys
from typing import Any

MAX_EXAMPLE = 400


def decode_body(response: dict[str, Any]) -> str | None:
    content = response.get("content") or {}
    if "$base64" in content:
        try:
            return base64.b64decode(content["$base64"]).decode("utf-8", errors="replace")
        except (ValueError, TypeError):
            return None
    if "string" in content:
        return content["string"]
    return None


def error_code(body: str | None) -> str | None:
    if body is None:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return "<not JSON>"
    if isinstance(value, dict):
        return value.get("error_code")
    return None


def describe_request(case: dict[str, Any]) -> str:
    parts = [f"{case.get('method')} {case.get('path')}"]
    if case.get("path_parameters"):
        parts.append(f"path={json.dumps(case['path_parameters'], ensure_ascii=True)}")
    if case.get("query"):
        parts.append(f"query={json.dumps(case['query'], ensure_ascii=True)}")
    headers = {
        k: v
        for k, v in (case.get("headers") or {}).items()
        if k.lower() not in ("authorization", "x-api-key", "user-agent")
    }
    if headers:
        parts.append(f"headers={json.dumps(headers, ensure_ascii=True)}")
    if "body" in case:
        parts.append(f"body={json.dumps(case['body'], ensure_ascii=True)}")
    elif case.get("method") in ("POST", "PUT", "PATCH"):
        parts.append("body=<none>")
    phase = ((case.get("meta") or {}).get("phase") or {})
    description = (phase.get("data") or {}).get("description")
    if description:
        parts.append(f"[{phase.get('name')}: {description}]")
    if case.get("auth_identity"):
        parts.append(f"as {case['auth_identity']}")
    text = " ".join(parts)
    return text if len(text) <= MAX_EXAMPLE else text[:MAX_EXAMPLE] + "…"


def short(text: str | None, limit: int = 240) -> str:
    if text is None:
        return "<no body>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def main(path: str) -> int:
    failures: list[dict[str, Any]] = []
    transitions = collections.Counter()
    phases: dict[str, str] = {}
    seen_cases: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            if "PhaseFinished" in event:
                item = event["PhaseFinished"]
                phases[item["phase"]["name"]] = item["status"]
                continue
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            cases = recorder.get("cases") or {}
            interactions = recorder.get("interactions") or {}
            if finished.get("phase") == "stateful":
                for case in cases.values():
                    transition = case.get("transition")
                    if not transition:
                        continue
                    values = [
                        parameter.get("value")
                        for container in (transition.get("parameters") or {}).values()
                        for parameter in container.values()
                    ]
                    unresolved = any(isinstance(v, dict) and v.get("$unresolvable") for v in values)
                    transitions["unresolvable" if unresolved else "resolved"] += 1
            for case_id, checks in (recorder.get("checks") or {}).items():
                case = (cases.get(case_id) or {}).get("value") or {}
                response = (interactions.get(case_id) or {}).get("response") or {}
                body = decode_body(response)
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    key = (case_id, check["name"] + failure.get("message", ""))
                    if key in seen_cases:
                        continue
                    seen_cases.add(key)
                    failures.append(
                        {
                            "check": check["name"],
                            "code": failure.get("code"),
                            "title": failure.get("title"),
                            "operation": failure.get("operation") or f"{case.get('method')} {case.get('path')}",
                            "message": failure.get("message") or "",
                            "phase": finished.get("phase"),
                            "status": response.get("status_code"),
                            "error_code": error_code(body),
                            "body": body,
                            "request": describe_request(case),
                        }
                    )

    print("=" * 78)
    print("CONTRACT FAILURES BY CHECK AND CAUSE")
    print("=" * 78)
    if phases:
        print("phases: " + ", ".join(f"{name}={status}" for name, status in phases.items()))
    if transitions:
        total = sum(transitions.values())
        print(
            f"stateful: {transitions['resolved']} of {total} link transitions could take their value "
            f"from the previous response ({transitions['unresolvable']} unresolvable)"
        )
    if not failures:
        print("no failing test case")
        return 0

    by_check = collections.Counter(f["check"] for f in failures)
    print("failing test cases per check:")
    for check, count in by_check.most_common():
        code = next(f["code"] for f in failures if f["check"] == check)
        print(f"  {check} ({code}): {count}")

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = collections.defaultdict(list)
    for f in failures:
        if f["check"] in ("status_code_conformance", "positive_data_acceptance", "negative_data_rejection",
                          "missing_required_header", "not_a_server_error", "ignored_auth",
                          "unsupported_method"):
            key = (f["check"], str(f["status"]), str(f["error_code"]))
        else:
            first = next((line for line in f["message"].splitlines() if line.strip()), "")
            key = (f["check"], f["operation"], str(f["status"]), first)
        groups[key].append(f)

    current = None
    for key in sorted(groups, key=lambda k: (k[0], -len({f["operation"] for f in groups[k]}), k)):
        items = groups[key]
        check = key[0]
        if check != current:
            current = check
            print()
            print(f"--- {check} ({items[0]['code']} {items[0]['title']}) ---")
        operations = sorted({f["operation"] for f in items})
        sample = items[0]
        if len(key) == 3:
            print(f"* {key[1]} {key[2]}: {len(items)} cases on {len(operations)} operation(s)")
        else:
            print(f"* {key[1]} -> {key[2]}: {short(key[3], 160)} ({len(items)} cases)")
        if len(key) == 3 and len(operations) > 8:
            print("    on: " + ", ".join(operations))
            print(f"    e.g. {sample['request']}")
        elif len(key) == 3:
            for operation in operations:
                example = next(f for f in items if f["operation"] == operation)
                print(f"    {operation}   e.g. {example['request']}")
        else:
            print(f"    e.g. {sample['request']}")
        message = short(sample["message"].split("\n\nValidated against")[0], 200)
        if message and len(key) == 3:
            print(f"    check says: {message}")
        print(f"    answer: {sample['status']} {short(sample['body'])}")
    print()
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
