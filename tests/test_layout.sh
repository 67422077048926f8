# tests/test_layout.sh: the modules' dependencies go one way. From the objects of
# the build under test (build/ for ./kilnet, build/asan/ for ./kilnet-asan), nm
# gives what each defines and what it needs; no object may need, through others, a
# function of an object that needs one of its own (the link graph has no cycle).
# needs: test_layout_* nm python3

test_layout_no_cycle() {
	local dir=$ROOT/build
	case $KILNET in *-asan) dir=$ROOT/build/asan ;; esac
	ls "$dir"/*.o >/dev/null 2>&1 || { fail "no objects in $dir"; return 1; }
	python3 - "$dir" <<'PY'
import glob, os, subprocess, sys
d = sys.argv[1]
defs, uses = {}, {}
root = os.environ['ROOT']
for o in sorted(glob.glob(os.path.join(d, '*.o'))):
    n = os.path.basename(o)[:-2]
    if not os.path.exists(os.path.join(root, 'src', n + '.c')):
        continue        # an object left from a source since removed
    out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
    defs[n], uses[n] = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in 'TDBRC':
            defs[n].add(f[2])
        elif len(f) == 2 and f[0] == 'U':
            uses[n].add(f[1])
owner = {s: n for n, ds in defs.items() for s in ds}
edges = {n: {owner[s] for s in u if s in owner and owner[s] != n} for n, u in uses.items()}
why = {(n, owner[s]): s for n, u in uses.items() for s in sorted(u, reverse=True)
       if s in owner and owner[s] != n}
# Tarjan's strongly connected components: each of more than one object is a cycle.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in sorted(edges[v]):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v:
                break
        comps.append(sorted(c))
sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        visit(v)
bad = [c for c in comps if len(c) > 1]
for c in bad:
    print('FAIL: a cycle: ' + ', '.join(c))
    for a in c:
        for b in sorted(edges[a] & set(c)):
            print('      %s.o needs %s (%s.o)' % (a, why[(a, b)], b))
print('%d objects, %d links, %d cycles' % (len(defs), sum(len(e) for e in edges.values()), len(bad)))
sys.exit(1 if bad else 0)
PY
}

# The pure layer's header (kilnet.h) names nothing of sockets, processes or
# OpenSSL, and the pure modules (the config and dataset, the renderers, the site,
# the protocols' parsers) include only it, not the server's (server.h).
test_layout_pure_header() {
	local bad f
	bad=$(grep -nE '\bSSL\b|ssl_st|\bpid_t\b|struct event\b|sigset_t|#include <(signal|sys/socket|openssl/|event2/)' \
		"$ROOT/src/kilnet.h" || true)
	[ -z "$bad" ] || { echo "$bad"; fail "kilnet.h names the server's runtime"; return 1; }
	for f in config config_edit config_network config_store config_metrics dataset loader \
		render_atom render_docs render_gemtext render_gopher render_nex render_page \
		render_spartan site site_wire wire search chunk gemini gopher spartan nex url \
		proxy mime wrap util diag; do
		[ -f "$ROOT/src/$f.c" ] || { fail "src/$f.c is gone: update this list"; return 1; }
		grep -q '#include "server.h"' "$ROOT/src/$f.c" && { fail "src/$f.c includes server.h"; return 1; }
	done
	return 0
}
