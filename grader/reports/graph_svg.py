"""The computation graph of a failing loop-invariant test, drawn as inline SVG.

Layered layout: a node's column is its topological depth (leaves in column 0, a
component one column right of its deepest operand); rows inside a column are ordered
by the barycentre of their operands and consumers to keep edges short. The processed
part of the graph (the "red circuit") is red, the component whose ``backward()`` broke
the invariant is orange and dashed, and the node whose grad broke carries a marker.
"""
from __future__ import annotations

from html import escape

BOX_W, BOX_H = 116, 46
COL_GAP, ROW_GAP = 40, 16
PAD = 16

RED, RED_FILL = "#c62828", "#fdecea"
ORANGE, ORANGE_FILL = "#e65100", "#fff3e0"
GREY, INK = "#9e9e9e", "#263238"
LEAF_FILL = {"Input": "#e3f2fd", "Parameter": "#e8f5e9"}


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fit(text: str, em: float) -> str:
    """A textLength squeeze when ``text`` (at ``em`` px per character) overflows a box."""
    room = BOX_W - 12
    return f' textLength="{room}" lengthAdjust="spacingAndGlyphs"' if len(text) * em > room else ""


def layout(graph: dict) -> tuple[dict, dict, list]:
    """(nodes by name, {name: (column, row)}, columns) for a drawable graph."""
    nodes = {}
    for n in graph.get("nodes") or []:
        nodes[str(n.get("name"))] = {"name": str(n.get("name")), "kind": str(n.get("kind", "?")),
                                     "args": [str(a) for a in n.get("args") or []]}
    for n in list(nodes.values()):
        for a in n["args"]:
            nodes.setdefault(a, {"name": a, "kind": "?", "args": []})

    depth: dict[str, int] = {}

    def visit(name, stack=()):
        if name in depth:
            return depth[name]
        if name in stack:  # a cycle cannot come from a valid graph; draw it anyway
            return 0
        args = nodes[name]["args"]
        depth[name] = 1 + max(visit(a, stack + (name,)) for a in args) if args else 0
        return depth[name]

    for name in nodes:
        visit(name)
    consumers = {n: [] for n in nodes}
    for n in nodes.values():
        for a in n["args"]:
            consumers[a].append(n["name"])
    for name, n in nodes.items():  # a leaf sits just left of its first consumer: short edges
        if not n["args"] and consumers[name]:
            depth[name] = min(depth[c] for c in consumers[name]) - 1
    ncols = max(depth.values(), default=0) + 1
    columns = [[n for n in nodes if depth[n] == c] for c in range(ncols)]

    def rows():
        return {n: i for col in columns for i, n in enumerate(col)}

    for _ in range(3):  # barycentre sweeps: right by operands, then left by consumers
        pos = rows()
        for c in range(1, ncols):
            columns[c].sort(key=lambda n: (sum(pos[a] for a in nodes[n]["args"]) / len(nodes[n]["args"])
                                           if nodes[n]["args"] else pos[n]))
            pos = rows()
        for c in range(ncols - 2, -1, -1):
            columns[c].sort(key=lambda n: (sum(pos[k] for k in consumers[n]) / len(consumers[n])
                                           if consumers[n] else pos[n]))
            pos = rows()
    place = {n: (c, i) for c, col in enumerate(columns) for i, n in enumerate(col)}
    return nodes, place, columns


def graph_svg(graph: dict, *, title: str = "computation graph", uid: str = "g") -> str:
    """Inline SVG (a string) for a ``details["graph"]`` dict; empty string when no nodes.

    ``uid`` prefixes the arrow-marker ids, unique per graph on one page.
    """
    uid = "".join(ch if ch.isalnum() else "-" for ch in uid)
    nodes, place, columns = layout(graph)
    if not nodes:
        return ""
    processed = {str(n) for n in graph.get("processed") or []}
    broken = str(graph["broken"]) if graph.get("broken") is not None else None
    bad = str(graph["bad_node"]) if graph.get("bad_node") is not None else None
    loss = str(graph["loss"]) if graph.get("loss") is not None else None

    tallest = max(len(col) for col in columns)
    width = 2 * PAD + len(columns) * BOX_W + (len(columns) - 1) * COL_GAP
    body_h = tallest * BOX_H + (tallest - 1) * ROW_GAP
    height = 2 * PAD + body_h + 14

    def xy(name):
        c, r = place[name]
        col_h = len(columns[c]) * BOX_H + (len(columns[c]) - 1) * ROW_GAP
        return PAD + c * (BOX_W + COL_GAP), PAD + (body_h - col_h) / 2 + r * (BOX_H + ROW_GAP)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
           f'width="{width:.0f}" height="{height:.0f}" style="max-width:100%;height:auto" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">',
           f"<title>{escape(title)}</title>",
           "<defs>"
           f'<marker id="{uid}-grey" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{GREY}"/></marker>'
           f'<marker id="{uid}-red" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{RED}"/></marker>'
           f'<marker id="{uid}-orange" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{ORANGE}"/></marker>'
           "</defs>"]

    # Edges first, so boxes are drawn over their ends. An edge into a processed component
    # has carried its gradient contribution: it belongs to the red circuit.
    for n in nodes.values():
        x1, y1 = xy(n["name"])
        k = len(n["args"])
        for i, a in enumerate(n["args"]):
            x0, y0 = xy(a)
            sx, sy = x0 + BOX_W, y0 + BOX_H / 2
            ex, ey = x1, y1 + BOX_H * (i + 1) / (k + 1)
            if n["name"] in processed:
                color, marker, w, cls = RED, f"{uid}-red", 2.2, "edge processed"
            elif n["name"] == broken:
                color, marker, w, cls = ORANGE, f"{uid}-orange", 2.2, "edge broken"
            else:
                color, marker, w, cls = GREY, f"{uid}-grey", 1.3, "edge"
            mx = (sx + ex) / 2
            out.append(f'<path class="{cls}" d="M{sx:.1f},{sy:.1f} C{mx:.1f},{sy:.1f} {mx:.1f},{ey:.1f} '
                       f'{ex - 2:.1f},{ey:.1f}" fill="none" stroke="{color}" stroke-width="{w}" '
                       f'marker-end="url(#{marker})"/>')

    for n in nodes.values():
        name, kind = n["name"], n["kind"]
        x, y = xy(name)
        classes = ["node"]
        fill, stroke, sw, dash = LEAF_FILL.get(kind, "#ffffff"), "#78909c", 1.3, ""
        if name in processed:
            classes.append("processed")
            fill, stroke, sw = RED_FILL, RED, 2.4
        if name == broken:
            classes.append("broken")
            fill, stroke, sw, dash = ORANGE_FILL, ORANGE, 3.0, ' stroke-dasharray="7 4"'
        if name == bad:
            classes.append("bad-node")
        if name == loss:
            classes.append("loss")
        rx = 22 if kind in LEAF_FILL else 6
        tip = f"{name} = {kind}({', '.join(n['args'])})" if n["args"] else f"{name}: {kind}"
        out.append(f'<g class="{" ".join(classes)}" data-name="{escape(name)}">'
                   f"<title>{escape(tip)}</title>"
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="{rx}" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"{dash}/>'
                   f'<text x="{x + BOX_W / 2:.1f}" y="{y + 19:.1f}" text-anchor="middle" font-size="13" '
                   f'font-weight="600" fill="{INK}"{_fit(_short(kind), 7.6)}>{escape(_short(kind))}</text>'
                   f'<text x="{x + BOX_W / 2:.1f}" y="{y + 36:.1f}" text-anchor="middle" font-size="11.5" '
                   f'fill="#546e7a" font-family="ui-monospace, Menlo, Consolas, monospace"'
                   f"{_fit(_short(name), 7.0)}>{escape(_short(name))}</text>")
        if name == bad:
            out.append(f'<circle class="bad-marker" cx="{x + BOX_W - 2:.1f}" cy="{y + 2:.1f}" r="10" '
                       f'fill="#b71c1c" stroke="#fff" stroke-width="2"/>'
                       f'<text x="{x + BOX_W - 2:.1f}" y="{y + 6.5:.1f}" text-anchor="middle" font-size="13" '
                       f'font-weight="700" fill="#fff">!</text>')
        if name == loss:
            out.append(f'<text x="{x + BOX_W / 2:.1f}" y="{y + BOX_H + 14:.1f}" text-anchor="middle" '
                       f'font-size="11" font-style="italic" fill="{INK}">loss ℓ</text>')
        out.append("</g>")

    out.append("</svg>")
    return "".join(out)


def _swatch(fill: str, stroke: str, rx: int = 3, dash: str = "", mark: bool = False) -> str:
    inner = ('<circle cx="9" cy="8" r="7" fill="#b71c1c"/><text x="9" y="12" text-anchor="middle" '
             'font-size="10" font-weight="700" fill="#fff" font-family="sans-serif">!</text>' if mark else
             f'<rect x="1" y="1" width="20" height="14" rx="{rx}" fill="{fill}" stroke="{stroke}" '
             f'stroke-width="2"{dash}/>')
    return f'<svg width="22" height="16" aria-hidden="true">{inner}</svg>'


def legend_html() -> str:
    """The legend of ``graph_svg`` drawings, as HTML (it stays legible when a wide graph is scaled)."""
    items = [(_swatch(RED_FILL, RED), "processed: the red circuit"),
             (_swatch(ORANGE_FILL, ORANGE, dash=' stroke-dasharray="5 3"'), "its backward() broke the invariant"),
             (_swatch("", "", mark=True), "grad wrong after that step"),
             (_swatch("#ffffff", "#78909c"), "not processed yet"),
             (_swatch(LEAF_FILL["Input"], "#78909c", rx=7), "Input"),
             (_swatch(LEAF_FILL["Parameter"], "#78909c", rx=7), "Parameter")]
    return ('<div class="legend">' + "".join(f'<span class="key">{sw} {escape(label)}</span>'
                                              for sw, label in items) + "</div>")
