#!/usr/bin/env python3
"""The scikit-learn TF-IDF peer of ../shared/bench/clustering/README.md, run
on one CSV (text,label) so `igny8 bench-clustering --peer` can time it in the
same run as our own clustering.

Variants: word 1-2-grams, char_wb 3-5-grams, or both blocks (sublinear tf,
min_df=2, L2), each clustered with KMeans(k) and with TruncatedSVD(200) ->
Ward (Ward only up to --ward-max rows: it needs O(n^2) memory). Prints one
JSON object: every variant's NMI (%) and seconds (vectorise + cluster).
Needs scikit-learn (pip install scikit-learn).
"""
import argparse, csv, json, sys, time

from scipy.sparse import hstack
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import normalized_mutual_info_score

p = argparse.ArgumentParser()
p.add_argument("csv")
p.add_argument("--k", type=int)
p.add_argument("--ward-max", type=int, default=25000)
a = p.parse_args()
with open(a.csv, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))[1:]
texts = [r[0] for r in rows]
labels = [r[1] for r in rows]
k = a.k or len(set(labels))

def vectorise(kind):
    word = lambda: TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    char = lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)
    if kind == "word":
        return word().fit_transform(texts)
    if kind == "char":
        return char().fit_transform(texts)
    return hstack([word().fit_transform(texts), char().fit_transform(texts)]).tocsr()

out = []
for kind in ("word", "char", "word+char"):
    for algo in ("KMeans", "Ward"):
        if algo == "Ward" and len(texts) > a.ward_max:
            continue
        t = time.perf_counter()
        x = vectorise(kind)
        if algo == "KMeans":
            pred = KMeans(n_clusters=k, random_state=0).fit_predict(x)
        else:
            z = TruncatedSVD(200, random_state=0).fit_transform(x)
            pred = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z)
        secs = time.perf_counter() - t
        out.append({"variant": f"{kind}, {algo}", "nmi": 100 * normalized_mutual_info_score(labels, pred), "secs": secs})
        print(f"  peer {kind}, {algo}: NMI {out[-1]['nmi']:.1f} in {secs:.1f} s", file=sys.stderr)
print(json.dumps(out))
