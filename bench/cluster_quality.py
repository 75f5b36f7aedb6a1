"""NMI, ARI and clusters found of an assignment against the true topics.

Usage: cluster_quality.py NAME ALGORITHM SETTING SECS LABELS_CSV ASSIGNED_CSV
(LABELS_CSV: id,topic; ASSIGNED_CSV: campaign_id,cluster_id.)
"""
import csv, math, sys
from collections import Counter
name, algorithm, setting, secs, labels, assigned = sys.argv[1:]
truth = {r["id"]: r["topic"] for r in csv.DictReader(open(labels))}
pairs = [(truth[r["campaign_id"]], r["cluster_id"]) for r in csv.DictReader(open(assigned)) if r["campaign_id"] in truth]
n = len(pairs)
a, b, ab = Counter(t for t, _ in pairs), Counter(c for _, c in pairs), Counter(pairs)
h = lambda c: -sum(v / n * math.log(v / n) for v in c.values())
mi = sum(v / n * math.log(v * n / (a[t] * b[c])) for (t, c), v in ab.items())
nmi = mi / ((h(a) + h(b)) / 2)
comb = lambda x: x * (x - 1) / 2
sab, sa, sb = sum(comb(v) for v in ab.values()), sum(comb(v) for v in a.values()), sum(comb(v) for v in b.values())
exp = sa * sb / comb(n)
ari = (sab - exp) / ((sa + sb) / 2 - exp)
print(f"{name} {algorithm} {setting}: {n:,} texts, {len(b)} clusters, NMI {nmi:.3f}, ARI {ari:.3f}, {secs} s")
