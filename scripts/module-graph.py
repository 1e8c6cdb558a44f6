#!/usr/bin/env python3
"""Module graph of the frontline crate: which top-level module refers to which.

Reads every src/**/*.rs, maps each file to its top-level module (src/call/core/mod.rs -> call,
src/clock.rs -> clock, src/main.rs -> main; src/lib.rs is skipped), and collects references to
other top-level modules: `crate::X` paths (also inside `use crate::{a, b::c}` groups) and, in
src/main.rs, `frontline::X`. `super::` paths are not followed. Comments and string literals are
ignored, and so is test code: items under `#[cfg(test)]` (a `mod tests { .. }` block, a
`#[cfg(test)] fn`) and test module files (`tests.rs`, or any file a `#[cfg(test)] mod x;` names).

Prints a Markdown report to stdout: the edges, the import circles (strongly connected
components with more than one module) and a layer per module (longest path in the condensed
graph, modules that import nothing at 0). The DOT graph goes to --dot FILE, to graphviz with
--svg FILE, or, with neither, to stdout ahead of the report.

    python3 scripts/module-graph.py --svg docs/module-graph.svg > docs/module-graph.md
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAR_LIT = re.compile(r"'(?:\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_code(src):
    """Blank out comments and string/char literals, keeping newlines and everything else."""
    out, i, n = [], 0, len(src)

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j])); i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j): depth += 1; j += 2
                elif src.startswith("*/", j): depth -= 1; j += 2
                else: j += 1
            out.append(blank(src[i:j])); i = j
        elif (m := re.compile(r'b?r(#*)"').match(src, i)) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + m.group(1)
            j = src.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(src[i:j])); i = j
        elif c == "'" and (m := CHAR_LIT.match(src, i)):
            out.append(blank(m.group(0))); i = m.end()
        else:
            out.append(c); i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{": depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def strip_cfg_test(code, path, skip_files):
    """Remove items under #[cfg(test)]; note out-of-line test modules in skip_files."""
    while (m := re.search(r"#\[cfg\(test\)\]", code)):
        k = m.end()
        brace, semi = code.find("{", k), code.find(";", k)
        if brace >= 0 and (semi < 0 or brace < semi):
            end = matching_brace(code, brace)
        else:
            end = semi if semi >= 0 else len(code) - 1
            if (mm := re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code[k:end + 1])):
                base = os.path.dirname(path)
                if not os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs"):
                    base = os.path.join(base, os.path.basename(path)[:-3])
                for cand in (mm.group(1) + ".rs", os.path.join(mm.group(1), "mod.rs")):
                    skip_files.add(os.path.normpath(os.path.join(base, cand)))
        code = code[:m.start()] + "\n" * code[m.start():end + 1].count("\n") + code[end + 1:]
    return code


def group_heads(code, open_at):
    """First path segment of each item in a `{a, b::c, d::{e}}` use group."""
    close = matching_brace(code, open_at)
    inner, heads, depth, start = code[open_at + 1:close], [], 0, 0
    for j, c in enumerate(inner + ","):
        if c == "{": depth += 1
        elif c == "}": depth -= 1
        elif c == "," and depth == 0:
            if (m := IDENT.match(inner[start:j].strip())):
                heads.append(m.group(0))
            start = j + 1
    return heads


def references(code, roots):
    refs = []
    for root in roots:
        for m in re.finditer(r"(?<![A-Za-z0-9_])" + root + r"\s*::\s*", code):
            k = m.end()
            if code.startswith("{", k):
                refs += group_heads(code, k)
            elif (mm := IDENT.match(code, k)):
                refs.append(mm.group(0))
    return refs


def top_module(rel):
    parts = rel.split(os.sep)[1:]  # drop "src"
    if len(parts) == 1:
        return parts[0][:-3]
    return parts[0]


def collect(root):
    src = os.path.join(root, "src")
    lib = strip_code(open(os.path.join(src, "lib.rs"), encoding="utf-8").read())
    modules = set(re.findall(r"(?:^|\n)\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)", lib))
    files = []
    for d, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                files.append(os.path.relpath(os.path.join(d, name), root))
    files.sort()
    skip, codes = set(), {}
    for rel in files:
        if rel == os.path.join("src", "lib.rs"):
            continue
        code = strip_code(open(os.path.join(root, rel), encoding="utf-8").read())
        codes[rel] = strip_cfg_test(code, rel, skip)
    edges = defaultdict(lambda: defaultdict(int))  # from -> to -> reference count
    nodes = set()
    for rel, code in codes.items():
        if rel in skip or os.path.basename(rel) == "tests.rs":
            continue
        mod = top_module(rel)
        nodes.add(mod)
        roots = ["crate", r"\$crate"] + (["frontline"] if rel == os.path.join("src", "main.rs") else [])
        for target in references(code, roots):
            if target in modules and target != mod:
                edges[mod][target] += 1
                nodes.add(target)
    return sorted(nodes), {a: dict(b) for a, b in edges.items()}


def tarjan(nodes, edges):
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return sccs


def layers(nodes, edges, sccs):
    comp_of = {v: i for i, comp in enumerate(sccs) for v in comp}
    succ = defaultdict(set)
    for a, bs in edges.items():
        for b in bs:
            if comp_of[a] != comp_of[b]:
                succ[comp_of[a]].add(comp_of[b])
    memo = {}

    def layer(c):
        if c not in memo:
            memo[c] = 1 + max((layer(s) for s in succ[c]), default=-1)
        return memo[c]

    return {v: layer(comp_of[v]) for v in nodes}


def dot(nodes, edges, circles, layer):
    in_circle = {v: i for i, comp in enumerate(circles) for v in comp}
    colors = ["#d62728", "#1f77b4", "#9467bd", "#ff7f0e", "#2ca02c", "#8c564b"]
    out = ["digraph frontline_modules {",
           '  graph [rankdir=TB, ranksep=0.9, nodesep=0.35, fontname="Helvetica", '
           'label="frontline: module -> module it refers to (crate:: paths, tests excluded); '
           'rows are layers, colored = import circle", labelloc=t, fontsize=16];',
           '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=13];',
           '  edge [color="#888888", arrowsize=0.7];']
    for n in sorted(set(layer.values()), reverse=True):
        row = sorted(v for v in nodes if layer[v] == n)
        out.append(f'  subgraph layer_{n} {{ rank=same; "layer {n}" [shape=plaintext, style="", fontcolor="#666666"]; '
                   + " ".join(f'"{v}";' for v in row if v not in in_circle) + " }")
        for i, comp in enumerate(circles):  # a circle is one node of the condensed graph: one layer
            if comp[0] in row:
                c = colors[i % len(colors)]
                out.append(f'  subgraph cluster_circle_{i} {{ label="import circle"; labelloc=b; fontcolor="{c}"; color="{c}"; style=dashed; '
                           + "{ rank=same; " + " ".join(f'"{v}";' for v in comp) + " } }")
    top = max(layer.values(), default=0)
    out += ['  "layer %d" -> "layer %d" [style=invis];' % (n, n - 1) for n in range(top, 0, -1)]
    for v in nodes:
        if v in in_circle:
            c = colors[in_circle[v] % len(colors)]
            out.append(f'  "{v}" [color="{c}", penwidth=2, fillcolor="{c}22"];')
    for a in sorted(edges):
        for b in sorted(edges[a]):
            attrs = [f'tooltip="{a} -> {b}: {edges[a][b]} references"']
            if a in in_circle and in_circle.get(b) == in_circle[a]:
                attrs.append(f'color="{colors[in_circle[a] % len(colors)]}", penwidth=1.6')
            if a == "main":  # the binary uses nearly everything: keep its edges in the background
                attrs.append('color="#d0d0d0"')
            if layer[a] <= layer[b]:
                attrs.append("constraint=false")
            out.append(f'  "{a}" -> "{b}" [{", ".join(attrs)}];')
    out.append("}")
    return "\n".join(out) + "\n"


def report(nodes, edges, circles, layer):
    out = ["# Module graph", "",
           "Generated by `python3 scripts/module-graph.py --svg docs/module-graph.svg > docs/module-graph.md`"
           " ([picture](module-graph.svg)). An edge `a -> b` means a file of `a` (outside test code)"
           " names a `crate::b` path; the count is the number of such references.", "",
           "## Import circles", ""]
    if circles:
        for comp in circles:
            inner = [f"{a} -> {b} ({edges[a][b]})" for a in comp for b in sorted(edges.get(a, {})) if b in comp]
            out.append(f"- {{{', '.join(comp)}}}: " + "; ".join(inner))
    else:
        out.append("None: the module graph is a DAG.")
    top = max(layer.values(), default=0)
    out += ["", f"## Layers ({top + 1}, longest path to a module that imports nothing; 0 = imports nothing)", ""]
    for n in range(top, -1, -1):
        out.append(f"- {n}: " + ", ".join(v for v in nodes if layer[v] == n))
    out += ["", "## Edges", "", "| module | layer | refers to (references) |", "|---|---|---|"]
    for v in sorted(nodes, key=lambda v: (-layer[v], v)):
        targets = ", ".join(f"{b} ({edges[v][b]})" for b in sorted(edges.get(v, {}), key=lambda b: (-layer[b], b)))
        out.append(f"| {v} | {layer[v]} | {targets or '—'} |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dot", metavar="FILE", help="write the DOT graph to FILE")
    ap.add_argument("--svg", metavar="FILE", help="render the graph to FILE with graphviz `dot`")
    ap.add_argument("--root", default=ROOT, help="crate root (default: the repository of this script)")
    args = ap.parse_args()

    nodes, edges = collect(args.root)
    sccs = tarjan(nodes, edges)
    circles = sorted((c for c in sccs if len(c) > 1), key=lambda c: (-len(c), c))
    layer = layers(nodes, edges, sccs)
    graph = dot(nodes, edges, circles, layer)

    if args.dot:
        with open(args.dot, "w", encoding="utf-8") as f:
            f.write(graph)
    if args.svg:
        if not shutil.which("dot"):
            sys.exit("graphviz `dot` not found: apt-get install -y -q graphviz")
        subprocess.run(["dot", "-Tsvg", "-o", args.svg], input=graph, text=True, check=True)
    if not args.dot and not args.svg:
        sys.stdout.write(graph + "\n")
    sys.stdout.write(report(nodes, edges, circles, layer))


if __name__ == "__main__":
    main()
