#!/usr/bin/env python3
"""Report import cycles between the files of a Rust module tree (default: src/server).

Usage: python3 tools/import_cycles.py [DIR]   (DIR: a module directory under the crate's
src/, default src/server; run from the crate root)

An edge A -> B means file A names something of file B's module: a `use` (groups expanded)
or an inline path (`super::x::f()`, `crate::server::x::Y`). A path goes to the file of its
longest prefix that is a module file. `mod.rs` files are wiring: they may see everything,
so their own imports are not edges (they can be on no cycle); an import *of* a mod.rs
(a type it defines) is still an edge into it.

Prints each cycle (a strongly connected set of files, with the edges inside it) and exits 1
when there is one; prints "no import cycles" and exits 0 otherwise.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Source without comments, string and char literals (kept the same length per line)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not re.match(r"\w", text[i - 1:i] or " "):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or text.startswith("'\\u{", i):
            j = text.find("'", i + 1)
            i = j + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.replace(" ", "").replace("\n", "")
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand_use(prefix + part)]


class Tree:
    def __init__(self, crate_src, root):
        self.src = crate_src
        self.root = root  # e.g. "server"

    def module_of(self, path):
        """File path -> module path list (['server', 'db', 'list'])."""
        rel = os.path.relpath(path, self.src)[:-3].split(os.sep)
        if rel[-1] == "mod":
            rel = rel[:-1]
        return rel

    def file_of(self, mods):
        """Longest prefix of `mods` that is a module file; None outside the tree."""
        for k in range(len(mods), 0, -1):
            base = os.path.join(self.src, *mods[:k])
            for cand in (base + ".rs", os.path.join(base, "mod.rs")):
                if os.path.isfile(cand):
                    return cand
        return None


def edges_of(tree, path):
    text = strip(open(path, encoding="utf-8").read())
    module = tree.module_of(path)
    is_mod = os.path.basename(path) == "mod.rs"
    # Inline modules (`mod tests { ... }`): `super` inside them is one level deeper.
    inline = []  # brace depths where an inline module opened
    depth = 0
    found = set()
    pos = 0
    token = re.compile(
        r"\bmod\s+(" + IDENT + r")\s*\{|\buse\s+([^;]+);|((?:crate|super|self)(?:::" + IDENT + r")+)|[{}]"
    )
    for m in token.finditer(text):
        if m.group(0) == "{":
            depth += 1
            continue
        if m.group(0) == "}":
            depth -= 1
            if inline and inline[-1] == depth:
                inline.pop()
            continue
        if m.group(1):
            inline.append(depth)
            depth += 1
            continue
        here = module + ["<inline>"] * len(inline)
        paths = expand_use(m.group(2)) if m.group(2) else [m.group(3)]
        for p in paths:
            segs = [s for s in re.split(r"::", p.split(" as ")[0]) if s]
            if not segs:
                continue
            if segs[0] == "crate":
                target = segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(here)
                while segs and segs[0] in ("super", "self"):
                    if segs.pop(0) == "super":
                        base = base[:-1]
                target = [s for s in base if s != "<inline>"] + segs
            else:
                continue
            target = [s for s in target if s != "*"]
            if not target or target[0] != tree.root:
                continue
            f = tree.file_of(target)
            if f and os.path.abspath(f) != os.path.abspath(path):
                found.add(f)
    return set() if is_mod else found


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    top = (sys.argv[1] if len(sys.argv) > 1 else "src/server").rstrip("/")
    # The tree's root module is the directory's name, its crate root the directory above.
    tree = Tree(os.path.dirname(top) or ".", os.path.basename(top))
    graph = {}
    for dirpath, _, files in os.walk(top):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                graph[path] = edges_of(tree, path)
    cycles = [sorted(c) for c in sccs(graph) if len(c) > 1]
    for c in cycles:
        print("import cycle among %d files:" % len(c))
        members = set(c)
        for a in c:
            for b in sorted(graph[a] & members):
                print("  %s -> %s" % (a, b))
    if cycles:
        return 1
    print("no import cycles among %d files of %s (mod.rs wiring excluded)" % (len(graph), top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
