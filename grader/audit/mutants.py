"""Mutants of the graded units, derived from the reference's AST by operators.

Every operator is applied at every site of a unit's body where it applies; a mutant is the
unit's whole top-level definition (class or function) with one change, as source text, so it
replaces the notebook's definition exactly as a student's cell would. Its id names the unit,
the operator and the site (line:col in the file the unit comes from), with ``#k`` when one
site gives several mutants. Mutants whose code equals the original, or another mutant's, are
dropped (they are the same program); nothing else is.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from typing import Callable, Iterator

from .units import Unit, find_top

# the operators, with the words a report uses for them
OPERATORS = {
    "drop_term": "drop a term/factor of a sum or product",
    "dup_term": "duplicate a term/factor",
    "drop_stmt": "drop a statement",
    "augassign": "`+=` <-> `=`, `+=` <-> `-=`",
    "sign_flip": "flip the sign of an expression",
    "swap_operands": "swap the operands of a non-commutative operation",
    "transpose": "insert or remove `.T`",
    "axis": "wrong axis / no axis / keepdims in a reduction",
    "io_swap": "use the input instead of the output (or vice versa)",
    "noop": "replace the body by `pass`",
    "return_zeros": "a result replaced by zeros",
    "return_ones": "a result replaced by ones",
    "return_input": "a result replaced by an input, unchanged",
    "inplace": "mutate an operand in place",
    "loop_skip": "a loop skips its first/last element, or runs in the other direction",
    "compare_flip": "flip a comparison",
    "constant": "change a numeric constant",
}

VALUE_ATTRS = {"value": "value", "val": "value", "dot": "dot", "grad": "grad"}
_REDUCTIONS = {"sum", "mean", "max", "min", "prod", "argmax", "argmin"}


@dataclass(frozen=True)
class Mutant:
    id: str
    unit: str
    top: str
    operator: str
    line: int
    col: int
    description: str
    source: str          # the mutated top-level definition


def _src(node) -> str:
    s = ast.unparse(node)
    return s if len(s) <= 60 else s[:57] + "..."


def _body_start(fn: ast.FunctionDef) -> int:
    b = fn.body
    return 1 if (len(b) > 1 and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant)
                 and isinstance(b[0].value.value, str)) else 0


def _parents(fn) -> dict:
    out = {}
    for p in ast.walk(fn):
        for c in ast.iter_child_nodes(p):
            out[c] = p
    return out


def _is_load(node, parents) -> bool:
    ctx = getattr(node, "ctx", None)
    return ctx is None or isinstance(ctx, ast.Load)


def _np(name, arg):
    return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()), [arg], [])


def _neg(e):
    return ast.UnaryOp(ast.USub(), e)


def _operands(cls: ast.ClassDef | None) -> list[str]:
    """``self.<name>`` attributes a class's ``__init__`` sets from its parameters (the operands)."""
    if cls is None:
        return []
    init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if init is None:
        return []
    params = {a.arg for a in init.args.args[1:]}
    out = []
    for n in ast.walk(init):
        if isinstance(n, ast.Assign):
            targets = [t for tgt in n.targets for t in (tgt.elts if isinstance(tgt, ast.Tuple) else [tgt])]
            values = n.value.elts if isinstance(n.value, ast.Tuple) else [n.value] * len(targets)
            for t, v in zip(targets, values):
                if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                        and isinstance(v, ast.Name) and v.id in params and t.attr not in out):
                    out.append(t.attr)
    return out


def _ctor_fields(cls: ast.ClassDef | None) -> list[str]:
    """``Cls(a, b)`` -> the attributes ``__init__`` stores its positional parameters in, in order."""
    if cls is None:
        return []
    init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if init is None:
        return []
    params = [a.arg for a in init.args.args[1:]]
    stored = {}
    for n in ast.walk(init):
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            t = n.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                for name in (x.id for x in ast.walk(n.value) if isinstance(x, ast.Name)):
                    if name in params:
                        stored.setdefault(name, t.attr)
    return [stored.get(p) for p in params]


class _Sites:
    """Candidate edits of one function: (operator, node, label, edit(node_copy, fn_copy) -> new)."""

    def __init__(self, fn: ast.FunctionDef, cls: ast.ClassDef | None):
        self.fn, self.cls = fn, cls
        self.parents = _parents(fn)
        self.body_nodes = [n for stmt in fn.body[_body_start(fn):] for n in ast.walk(stmt)]
        self.params = [a.arg for a in fn.args.args if a.arg != "self"]
        self.operands = _operands(cls)
        self.edits: list = []

    def add(self, op, node, label, edit: Callable):
        self.edits.append((op, node, label, edit))


def _collect(fn: ast.FunctionDef, cls: ast.ClassDef | None) -> _Sites:
    s = _Sites(fn, cls)
    start = _body_start(fn)
    stmts = fn.body[start:]
    if not (len(stmts) == 1 and isinstance(stmts[0], ast.Pass)):
        s.add("noop", fn, "body -> pass", lambda n, f: _set_body(f, [ast.Pass()]))
    value_exprs = _value_expressions(s)
    for node in s.body_nodes:
        p = s.parents.get(node)
        # -- terms and factors
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult)):
            s.add("drop_term", node, f"`{_src(node)}` -> `{_src(node.left)}`", lambda n, f: n.left)
            s.add("drop_term", node, f"`{_src(node)}` -> `{_src(node.right)}`",
                  lambda n, f: _neg(n.right) if isinstance(n.op, ast.Sub) else n.right)
            if not isinstance(node.op, ast.MatMult):
                s.add("dup_term", node, f"`{_src(node)}` with `{_src(node.right)}` twice",
                      lambda n, f: ast.BinOp(copy.deepcopy(n), n.op, copy.deepcopy(n.right)))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Div, ast.MatMult, ast.Pow)):
            s.add("swap_operands", node, f"`{_src(node)}` operands swapped",
                  lambda n, f: ast.BinOp(n.right, n.op, n.left))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            s.add("sign_flip", node.right, f"`{_src(node)}`: term `{_src(node.right)}` negated",
                  lambda n, f: _neg(n))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
            s.add("sign_flip", node, f"`{_src(node)}` -> `{_src(node.left)} + {_src(node.right)}`",
                  lambda n, f: ast.BinOp(n.left, ast.Add(), n.right))
        # -- statements
        if isinstance(node, ast.stmt) and node is not fn and len(_block_of(node, s.parents)) > 1 \
                and not isinstance(node, (ast.Return, ast.Pass)) and not _is_docstring(node):
            s.add("drop_stmt", node, f"drop `{_src(node).splitlines()[0]}`", lambda n, f: ast.Pass())
        if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
            s.add("augassign", node, f"`{_src(node)}` -> `=`",
                  lambda n, f: ast.Assign([n.target], n.value if isinstance(n.op, ast.Add) else _neg(n.value),
                                          lineno=n.lineno))
            s.add("augassign", node, f"`{_src(node)}`: `+=` <-> `-=`",
                  lambda n, f: ast.AugAssign(n.target, ast.Sub() if isinstance(n.op, ast.Add) else ast.Add(),
                                             n.value))
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], (ast.Attribute, ast.Subscript)):
            s.add("augassign", node, f"`{_src(node)}` -> `+=`",
                  lambda n, f: ast.AugAssign(n.targets[0], ast.Add(), n.value))
        # -- results: signs, zeros, ones, an input unchanged
        if node in value_exprs:
            s.add("sign_flip", node, f"`{_src(node)}` negated", lambda n, f: _neg(n))
            s.add("return_zeros", node, f"`{_src(node)}` -> zeros", lambda n, f: _np("zeros_like", n))
            s.add("return_ones", node, f"`{_src(node)}` -> ones", lambda n, f: _np("ones_like", n))
            for inp in _inputs(s):
                if ast.unparse(inp) != ast.unparse(node):
                    s.add("return_input", node, f"`{_src(node)}` -> `{_src(inp)}`",
                          (lambda i: lambda n, f: copy.deepcopy(i))(inp))
        # -- transposes
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            for side in ("left", "right"):
                operand = getattr(node, side)
                if not (isinstance(operand, ast.Attribute) and operand.attr == "T"):
                    s.add("transpose", operand, f"`{_src(operand)}` -> `{_src(operand)}.T`",
                          lambda n, f: ast.Attribute(n, "T", ast.Load()))
        if isinstance(node, ast.Attribute) and node.attr == "T":
            s.add("transpose", node, f"`{_src(node)}` -> `{_src(node.value)}`", lambda n, f: n.value)
        # -- reductions
        if isinstance(node, ast.Call) and _reduction(node):
            for i, kw in enumerate(node.keywords):
                if kw.arg == "axis":
                    s.add("axis", node, f"`{_src(node)}` without axis",
                          (lambda i: lambda n, f: _drop_kw(n, i))(i))
                    for alt in (0, -1):
                        if not (isinstance(kw.value, ast.Constant) and kw.value.value == alt):
                            s.add("axis", node, f"`{_src(node)}` with axis={alt}",
                                  (lambda i, alt: lambda n, f: _set_kw(n, i, ast.Constant(alt)))(i, alt))
                if kw.arg == "keepdims":
                    s.add("axis", node, f"`{_src(node)}` without keepdims",
                          (lambda i: lambda n, f: _drop_kw(n, i))(i))
            if not any(kw.arg == "axis" for kw in node.keywords):
                s.add("axis", node, f"`{_src(node)}` with axis=0",
                      lambda n, f: _add_kw(n, "axis", ast.Constant(0)))
        # -- input vs output
        if isinstance(node, ast.Attribute) and node.attr in VALUE_ATTRS and _is_load(node, s.parents) \
                and not isinstance(p, ast.Attribute):
            for alt in _value_refs(s):
                if VALUE_ATTRS[alt.attr] == VALUE_ATTRS[node.attr] and ast.unparse(alt) != ast.unparse(node) \
                        and VALUE_ATTRS[node.attr] != "grad":
                    s.add("io_swap", node, f"`{_src(node)}` -> `{_src(alt)}`",
                          (lambda alt: lambda n, f: copy.deepcopy(alt))(alt))
        # -- loops
        if isinstance(node, (ast.For, ast.comprehension)):
            it = node.iter
            rev = _unreversed(it)
            if rev is not None:
                s.add("loop_skip", it, f"`{_src(it)}` -> `{_src(rev)}` (not reversed)",
                      (lambda r: lambda n, f: copy.deepcopy(r))(rev))
            else:
                s.add("loop_skip", it, f"`{_src(it)}` reversed",
                      lambda n, f: ast.Subscript(n, ast.Slice(None, None, ast.Constant(-1)), ast.Load()))
            s.add("loop_skip", it, f"`{_src(it)}` skips its first element",
                  lambda n, f: _slice(n, 1, None))
            s.add("loop_skip", it, f"`{_src(it)}` skips its last element",
                  lambda n, f: _slice(n, None, -1))
        # -- comparisons
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            for alt in _FLIPS.get(type(node.ops[0]), ()):
                s.add("compare_flip", node, f"`{_src(node)}`: `{_OPS[type(node.ops[0])]}` -> `{_OPS[alt]}`",
                      (lambda alt: lambda n, f: ast.Compare(n.left, [alt()], n.comparators))(alt))
        # -- constants
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(p, ast.keyword):
            for alt in _constant_alternatives(node.value):
                s.add("constant", node, f"constant {node.value!r} -> {alt!r}",
                      (lambda alt: lambda n, f: ast.Constant(alt))(alt))
        # -- in-place mutation of an operand
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call) and cls is not None \
                and isinstance(node.value.func, ast.Name) and node.value.func.id == cls.name \
                and any(a.arg == "self" for a in fn.args.args):
            fields = _ctor_fields(cls)
            if fields and all(fields[:len(node.value.args)]):
                s.add("inplace", node, f"`{_src(node)}` stored into self, returns self",
                      lambda n, f: _inplace_return(n, fields))
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and _is_self_value(node.targets[0]):
            for op in s.operands:
                s.add("inplace", node, f"`{_src(node)}` computed in place in self.{op}.value",
                      (lambda op: lambda n, f: _inplace_forward(n, op))(op))
    return s


_OPS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_FLIPS = {ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE), ast.Lt: (ast.LtE, ast.Gt),
          ast.LtE: (ast.Lt, ast.GtE), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
          ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,)}


def _constant_alternatives(v):
    table = {0: [1], 1: [0, 2], 2: [1], 0.5: [1.0], -1: [1]}
    if v in table:
        return [type(v)(x) if isinstance(v, float) else x for x in table[v]]
    return [v * 2]


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _block_of(stmt, parents) -> list:
    p = parents.get(stmt)
    for field in ("body", "orelse", "finalbody"):
        block = getattr(p, field, None)
        if isinstance(block, list) and stmt in block:
            return [s for s in block if not _is_docstring(s)]
    return [stmt]


def _set_body(fn, stmts):
    fn.body = fn.body[:_body_start(fn)] + stmts
    return fn


def _value_expressions(s: _Sites) -> set:
    """The results a unit produces: values assigned to attributes, augmented grads, returned
    values (each element of a returned tuple), and the arguments of its own class's constructor."""
    out = set()
    for n in s.body_nodes:
        if isinstance(n, (ast.Assign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets):
                out.add(n.value)
        elif isinstance(n, ast.Return) and n.value is not None:
            v = n.value
            if isinstance(v, ast.Tuple):
                out.update(v.elts)
            elif isinstance(v, ast.Call) and s.cls is not None and isinstance(v.func, ast.Name) \
                    and v.func.id == s.cls.name:
                out.update(v.args)
            elif not (isinstance(v, ast.Name) and v.id == "self"):
                out.add(v)
    return {n for n in out if not isinstance(n, ast.Constant)}


def _inputs(s: _Sites) -> list:
    """What a result could be replaced by "unchanged": the function's parameters, or for a
    method the operands' values and the upstream grad."""
    out = [ast.Name(p, ast.Load()) for p in s.params if p not in ("f",)]
    self_ = ast.Name("self", ast.Load())
    if s.operands and s.fn.name == "backward":
        out.append(ast.Attribute(self_, "grad", ast.Load()))
    for op in s.operands:
        out.append(ast.Attribute(ast.Attribute(self_, op, ast.Load()), "value", ast.Load()))
    return out


def _value_refs(s: _Sites) -> list:
    """In-scope values (``self.value``, ``self.x.value``, ``o.val``, ...) a unit may confuse."""
    seen, out = set(), []

    def add(node):
        key = ast.unparse(node)
        if key not in seen:
            seen.add(key)
            out.append(node)

    self_ = ast.Name("self", ast.Load())
    if s.operands:
        add(ast.Attribute(self_, "value", ast.Load()))
        for op in s.operands:
            add(ast.Attribute(ast.Attribute(self_, op, ast.Load()), "value", ast.Load()))
    for n in s.body_nodes:
        if isinstance(n, ast.Attribute) and n.attr in ("val", "value", "dot") and isinstance(n.value, ast.Name):
            add(ast.Attribute(ast.Name(n.value.id, ast.Load()), n.attr, ast.Load()))
    return out


def _reduction(call: ast.Call) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr in _REDUCTIONS


def _drop_kw(call, i):
    call.keywords = call.keywords[:i] + call.keywords[i + 1:]
    return call


def _set_kw(call, i, value):
    call.keywords[i] = ast.keyword(call.keywords[i].arg, value)
    return call


def _add_kw(call, name, value):
    call.keywords = call.keywords + [ast.keyword(name, value)]
    return call


def _slice(it, lower, upper):
    c = lambda v: None if v is None else ast.Constant(v)  # noqa: E731
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id in ("range", "reversed"):
        it = ast.Call(ast.Name("list", ast.Load()), [it], [])
    elif not isinstance(it, (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp)):
        it = ast.Call(ast.Name("list", ast.Load()), [it], [])
    return ast.Subscript(it, ast.Slice(c(lower), c(upper), None), ast.Load())


def _unreversed(it):
    """``x[::-1]`` or ``reversed(x)`` -> ``x``; None when the iteration is not reversed."""
    if isinstance(it, ast.Subscript) and isinstance(it.slice, ast.Slice) and it.slice.lower is None \
            and it.slice.upper is None and isinstance(it.slice.step, ast.UnaryOp) \
            and isinstance(it.slice.step.op, ast.USub):
        return it.value
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed" and it.args:
        return it.args[0]
    return None


def _is_self_value(t) -> bool:
    return isinstance(t, ast.Attribute) and t.attr == "value" and isinstance(t.value, ast.Name) \
        and t.value.id == "self"


def _inplace_return(ret: ast.Return, fields):
    """``return Cls(a, b)`` -> ``self.f1 = a; self.f2 = b; return self`` (the operand changed)."""
    stmts = [ast.Assign([ast.Attribute(ast.Name("self", ast.Load()), f, ast.Store())], arg, lineno=ret.lineno)
             for f, arg in zip(fields, ret.value.args)]
    return stmts + [ast.Return(ast.Name("self", ast.Load()))]


def _inplace_forward(assign: ast.Assign, op: str):
    """``self.value = e`` -> ``self.op.value[...] = e; self.value = self.op.value``."""
    opv = ast.Attribute(ast.Attribute(ast.Name("self", ast.Load()), op, ast.Load()), "value", ast.Load())
    store = ast.Subscript(copy.deepcopy(opv), ast.Constant(Ellipsis), ast.Store())
    return [ast.Assign([store], assign.value, lineno=assign.lineno),
            ast.Assign([assign.targets[0]], copy.deepcopy(opv), lineno=assign.lineno)]


def _unit_function(top: ast.AST, unit: Unit) -> tuple[ast.FunctionDef, ast.ClassDef | None]:
    if unit.method is None:
        return top, None
    for f in top.body:
        if isinstance(f, ast.FunctionDef) and f.name == unit.method:
            return f, top
    raise ValueError(f"{unit.top} has no method {unit.method}")


def _replace(root, old, new) -> bool:
    """Put ``new`` (a node or a list of statements) where ``old`` is under ``root``."""
    for parent in ast.walk(root):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return True
            if isinstance(value, list) and any(v is old for v in value):
                i = next(k for k, v in enumerate(value) if v is old)
                value[i:i + 1] = new if isinstance(new, list) else [new]
                return True
    return False


def _mutate(top: ast.AST, unit: Unit, index: int) -> tuple[str, str, int, int, str]:
    """Apply the ``index``-th edit of the unit to a fresh copy of its definition."""
    new_top = copy.deepcopy(top)
    fn, cls = _unit_function(new_top, unit)
    sites = _collect(fn, cls)
    op, node, label, edit = sites.edits[index]
    line, col = getattr(node, "lineno", fn.lineno), getattr(node, "col_offset", fn.col_offset)
    if node is fn:
        edit(node, fn)
    else:
        result = edit(node, fn)
        if result is not node:
            _replace(fn, node, result)
    ast.fix_missing_locations(new_top)
    return op, label, line, col, ast.unparse(new_top)


def unit_mutants(unit: Unit, line_offset: int = 0, top: ast.AST | None = None) -> Iterator[Mutant]:
    """The unit's mutants (``top``: its top-level definition, default: looked up by path)."""
    top = top if top is not None else find_top(unit.path, unit.top, unit.cell)
    fn, cls = _unit_function(top, unit)
    n = len(_collect(fn, cls).edits)
    original = ast.unparse(top)
    seen = {original}
    per_site: dict = {}
    for i in range(n):
        op, label, line, col, source = _mutate(top, unit, i)
        try:
            compile(source, "<mutant>", "exec")
        except SyntaxError:
            continue
        if source in seen:
            continue
        seen.add(source)
        base = f"{unit.name}:{op}@{line + line_offset}:{col}"
        per_site[base] = per_site.get(base, 0) + 1
        mid = base if per_site[base] == 1 else f"{base}#{per_site[base]}"
        yield Mutant(mid, unit.name, unit.top, op, line + line_offset, col,
                     f"{OPERATORS[op]}: {label}", source)


def mutants(units: list[Unit], only: str | None = None) -> list[Mutant]:
    out = []
    for u in units:
        if only and only not in (u.name, u.top, u.test):
            continue
        offset = u.line - _unit_function(find_top(u.path, u.top, u.cell), u)[0].lineno
        out += list(unit_mutants(u, offset))
    return out


def source_mutants(source: str, name: str) -> list[Mutant]:
    """Mutants of ``name`` ("f" or "Class.method") defined in ``source`` (line numbers of ``source``)."""
    top_name, _, method = name.partition(".")
    tree = ast.parse(source)
    top = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == top_name)
    unit = Unit(name=name, top=top_name, method=method or None, test="", check="", cell="", path="<source>",
                line=0, origin="source")
    return list(unit_mutants(unit, 0, top))
