#!/usr/bin/env python3
"""Create the accounts and data the contract run tests with.

Usage: seed.py BASE_URL OUT_DIR

Signs up two accounts through the public API (ann owns "Acme", bob owns
"Beta"), gives each a site, a sector and a few keywords, and clusters ann's
keywords (offline strategy). Then writes to OUT_DIR:

- wfc.json: the Web Fuzzing Commons auth file schemathesis logs in with
  (one entry per account, tokens read from `data.access_token`);
- dictionaries.toml: schemathesis dictionaries holding ann's ids, bound to
  the parameters that take them (`sector_id`, `keyword_ids`, path `id`, ...)
  with probability 0.5. Without them every id the fuzzer sends is a random
  UUID, so every handler stops at its 404 and nothing past it is tested.

Uses only the standard library and the documented API, and fails (exit 1)
when a response is not the documented envelope.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PASSWORD = "correct horse"
KEYWORDS = [
    "seo tools",
    "best seo tools",
    "free seo tools",
    "keyword research",
    "keyword research tool",
    "backlink checker",
    "free backlink checker",
    "rank tracker",
]


class Api:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 202)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        if status not in expect:
            raise SystemExit(f"seed: {method} {path} answered {status}: {raw[:500]!r}")
        envelope = json.loads(raw)
        if not isinstance(envelope, dict) or envelope.get("success") is not True or "data" not in envelope:
            raise SystemExit(f"seed: {method} {path} did not answer a success envelope: {raw[:500]!r}")
        return envelope["data"]


def seed_account(base: str, email: str, account: str, keywords: list[str]) -> dict[str, Any]:
    api = Api(base)
    signup = api.call("POST", "/api/v1/auth/signup/", {"email": email, "password": PASSWORD, "account_name": account})
    api.token = signup["access_token"]
    me = api.call("GET", "/api/v1/auth/me/")
    site = api.call("POST", "/api/v1/auth/sites/", {"name": f"{account} site", "domain": "https://example.com"})
    sector = api.call("POST", f"/api/v1/auth/sites/{site['id']}/sectors/", {"name": f"{account} sector"})
    keyword_ids = [
        api.call("POST", "/api/v1/planner/keywords/", {"keyword": k, "sector_id": sector["id"], "volume": 100 + i})["id"]
        for i, k in enumerate(keywords)
    ]
    return {
        "api": api,
        "email": email,
        "user_id": (me.get("user") or {}).get("id") or signup["user"]["id"],
        "account_id": signup["account"]["id"],
        "site_id": site["id"],
        "sector_id": sector["id"],
        "keyword_ids": keyword_ids,
        "cluster_ids": [],
    }


def cluster(account: dict[str, Any]) -> None:
    api: Api = account["api"]
    job = api.call("POST", "/api/v1/planner/keywords/auto_cluster/", {"sector_id": account["sector_id"], "num_clusters": 3})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = api.call("GET", "/api/v1/jobs/")
        state = next((j.get("state") for j in jobs.get("results", []) if j.get("id") == job["job_id"]), None)
        if state in ("SUCCESS", "FAILURE", "CANCELLED"):
            break
        time.sleep(0.25)
    clusters = api.call("GET", f"/api/v1/planner/clusters/?sector_id={account['sector_id']}")
    account["cluster_ids"] = [c["id"] for c in clusters.get("results", [])]


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def main(base: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ann = seed_account(base, "ann@example.com", "Acme", KEYWORDS)
    bob = seed_account(base, "bob@example.com", "Beta", KEYWORDS[:3])
    cluster(ann)

    login = {
        "endpoint": "/api/v1/auth/login/",
        "verb": "POST",
        "contentType": "application/json",
        "token": {
            "extractFrom": "body",
            "extractSelector": "/data/access_token",
            "sendIn": "header",
            "sendName": "Authorization",
            "sendTemplate": "Bearer {token}",
        },
    }
    wfc = {
        "schemaVersion": "0.2.0",
        "authTemplate": {"loginEndpointAuth": login},
        "auth": [
            {
                "name": name,
                "loginEndpointAuth": {
                    "payloadUserPwd": {
                        "username": account["email"],
                        "usernameField": "email",
                        "password": PASSWORD,
                        "passwordField": "password",
                    }
                },
            }
            for name, account in (("ann", ann), ("bob", bob))
        ],
    }
    (out / "wfc.json").write_text(json.dumps(wfc, indent=2) + "\n")

    clusters = ann["cluster_ids"] or [ann["sector_id"]]
    dictionaries = {
        "ann_site": [ann["site_id"]],
        "ann_sector": [ann["sector_id"]],
        "ann_keywords": ann["keyword_ids"],
        "ann_clusters": clusters,
        "ann_account": [ann["account_id"]],
        "ann_ids": [ann["site_id"], ann["sector_id"], ann["user_id"], *ann["keyword_ids"], *ann["cluster_ids"]],
    }
    bindings = {
        "path.id": "ann_ids",
        "query.site_id": "ann_site",
        "query.sector_id": "ann_sector",
        "query.cluster_id": "ann_clusters",
        "body.sector_id": "ann_sector",
        "body.site_ids[*]": "ann_site",
        "body.keyword_ids[*]": "ann_keywords",
        "body.ids[*]": "ann_keywords",
        "body.cluster_id": "ann_clusters",
        "body.into": "ann_clusters",
        "body.from[*]": "ann_clusters",
        "body.account_id": "ann_account",
    }
    lines = ["", "# ---- generated by seed.py: ann's ids, so that requests reach existing objects ----"]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}"]
    lines.append("[parameters]")
    for key, name in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}')
    (out / "dictionaries.toml").write_text("\n".join(lines) + "\n")

    for name, account in (("ann", ann), ("bob", bob)):
        print(
            f"seeded {name} ({account['email']}): site {account['site_id']}, sector {account['sector_id']}, "
            f"{len(account['keyword_ids'])} keywords, {len(account['cluster_ids'])} clusters"
        )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
