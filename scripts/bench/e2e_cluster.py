"""End to end over HTTP against a running igny8: sign up, import N generated
keywords (10 topics x modifiers) as CSV, cluster them without num_clusters,
follow task_progress, then wait until every keyword is listed with a
cluster and time the cluster list.

    python3 scripts/bench/e2e_cluster.py http://127.0.0.1:8080 100000
"""
import json, time, urllib.request, random, sys
base = sys.argv[1]; n = int(sys.argv[2])
def call(method, path, body=None, token=None, ctype="application/json"):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None: req.add_header("content-type", ctype)
    if token: req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=600) as r: return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read())
email = f"e2e{random.randint(0,10**9)}@example.com"
s, r = call("POST", "/api/v1/auth/signup/", {"email": email, "password": "correct horse", "account_name": "E2E"})
tok = r["data"]["access_token"]
s, r = call("POST", "/api/v1/auth/sites/", {"name": "Blog"}, tok); site = r["data"]["id"]
s, r = call("POST", f"/api/v1/auth/sites/{site}/sectors/", {"name": "Main"}, tok); sector = r["data"]["id"]
topics = ["running shoes","chocolate cake","flights paris","crm software","dog food","solar panels","yoga mats","coffee beans","car insurance","wedding dresses"]
mods = ["best","cheap","buy","review","near me","2025","for women","for men","online","top","discount","vs","how to choose","guide"]
rows = ["keyword,volume,difficulty"]
seen=set(); i=0
while len(rows) <= n:
    t = random.choice(topics); kw = f"{random.choice(mods)} {t} {random.choice(mods)} {i}"
    i+=1
    rows.append(f"{kw},{random.randint(10,10000)},{random.randint(0,100)}")
t0=time.time()
s, r = call("POST", f"/api/v1/planner/keywords/import_csv/?sector_id={sector}", "\n".join(rows).encode(), tok, "text/csv")
print("import", s, r["data"]["imported"], f"{time.time()-t0:.1f}s")
t0=time.time()
s, r = call("POST", "/api/v1/planner/keywords/auto_cluster/", {"sector_id": sector}, tok)
print("auto_cluster", s, r.get("data", r))
job = r["data"]["job_id"]
last=None
while True:
    s, r = call("GET", f"/api/v1/system/settings/task_progress/{job}/", None, tok)
    d = r["data"]; m=(d["state"], d["meta"]["phase"], d["meta"]["message"])
    if m!=last: print(f"{time.time()-t0:6.1f}s", m); last=m
    if d["state"] in ("SUCCESS","FAILURE","CANCELLED"): break
    time.sleep(0.5)
print("result", json.dumps(d.get("result"))[:300])
while True:
    s, r = call("GET", f"/api/v1/planner/keywords/?sector_id={sector}&unclustered=true&page_size=1", None, tok)
    if r["data"]["count"] == 0: break
    time.sleep(0.5)
print(f"every keyword clustered and listable after {time.time()-t0:.1f}s")
t1=time.time(); s, r = call("GET", f"/api/v1/planner/clusters/?sector_id={sector}&page_size=5", None, tok)
print("clusters", r["data"]["count"], f"list {1000*(time.time()-t1):.0f} ms", [ (c["name"], c["keyword_count"]) for c in r["data"]["results"]])
