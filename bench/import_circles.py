#!/usr/bin/env python3
"""Lists import circles between the modules of src/: pairs (or rings) of modules that each use
items of the other, first file by file, then folder by folder (top-level modules: `edit` stands for
everything under src/edit/). Usage: python3 bench/import_circles.py [REPO_ROOT]; with
SHOW_EDGES=1 it also lists every use that crosses top-level modules. Re-exports (`pub use`) and
test modules do not count. Exits 1 when either level has a circle."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else "."
src = os.path.join(root, 'src')
mods = {}
for d, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f); rel = os.path.relpath(p, src)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel in (['lib'], ['main']): rel = []
        if rel and rel[-1] == 'tests' and len(rel) > 1: continue  # test-only files
        mods['::'.join(rel)] = p
def strip_tests(t):
    i = t.find('#[cfg(test)]')
    t = t if i < 0 else t[:i]
    # `pub use` re-exports (a facade) are not imports of what the module uses
    return re.sub(r'^pub use [^;]*;', '', t, flags=re.M)
def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        m = '::'.join(parts[:n])
        if m in mods: return m
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    t = strip_tests(open(p).read())
    t = re.sub(r'//.*', '', t)
    here = m.split('::') if m else []
    # crate:: paths, including grouped uses: crate::a::{b, c::d}
    for mm in re.finditer(r'crate::([A-Za-z_][\w:]*)(::\{([^}]*)\})?', t):
        base = mm.group(1).rstrip(':')
        targets = [base]
        if mm.group(3):
            targets = [base + '::' + x.strip().split(' ')[0] for x in mm.group(3).split(',') if x.strip()]
        for tg in targets:
            r = resolve(tg)
            if r is not None and r != m: edges[m].add(r)
    # super:: paths relative to the module (a file's module is `here`)
    for mm in re.finditer(r'\bsuper::([A-Za-z_][\w:]*)', t):
        parent = here[:-1]
        r = resolve('::'.join(parent + [mm.group(1).rstrip(':')]))
        if r is None: r = '::'.join(parent)
        if r != m: edges[m].add(r)
    # relative uses of child modules: `use child::…`, `child::item` (the declaration alone is not a use)
    children = [c for c in re.findall(r'^\s*(?:pub(?:\([^)]*\))? )?mod (\w+);', t, re.M)]
    body = re.sub(r'^\s*(?:pub(?:\([^)]*\))? )?mod \w+;', '', t, flags=re.M)
    for c in children:
        if re.search(r'(?<![\w:])' + c + r'::', body):
            cm = '::'.join(here + [c])
            if cm in mods: edges[m].add(cm)
def circles(edges):
    """Strongly connected components with more than one member (Tarjan)."""
    index = {}; low = {}; stack = []; on = set(); out = []; i = [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in edges:
        if v not in index: sc(v)
    return out
# module-declaration edges alone (parent -> child) never form a cycle; report SCCs
files = circles(edges)
for c in files: print('circle:', ', '.join(x or 'lib' for x in c))
print(len(files), 'circles;', len(mods), 'modules')
# folder level: a top-level module and everything under it is one node; lib.rs/main.rs are the root
top = lambda m: m.split('::')[0]
folder_edges = {top(m): set() for m in mods if m}
for m, ws in edges.items():
    for w in ws:
        if m and w and top(w) != top(m): folder_edges[top(m)].add(top(w))
folders = circles(folder_edges)
for c in folders:
    uses = '; '.join(f'{a} -> {b}' for a in c for b in sorted(folder_edges[a]) if b in c)
    print(f"folder circle: {', '.join(c)} ({uses})")
print(len(folders), 'folder circles;', len(folder_edges), 'top-level modules')
if os.environ.get('SHOW_EDGES'):
    for m, ws in sorted(edges.items()):
        for w in sorted(ws):
            if m and w and top(m) != top(w): print('use', m, '->', w)
sys.exit(1 if files or folders else 0)
