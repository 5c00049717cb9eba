"""The ``precision`` transform: a data format and a math fidelity per (role, phase).

A policy maps roles (``irperf.roles.Role``) and phases (``vision`` for the encoder and the
projector, else the graph's ``prefill`` or ``decode``) to a **weight** format, an **activation**
format and a math **fidelity**. Presets ship in ``passes/data/precision/`` (``tt-accuracy``,
``tt-performance``, ``bf16``); a user's TOML file has the same form::

    description = "..."
    [default]                      # every role
    weight = "bf16"
    activation = "bf16"
    fidelity = "hifi4"
    [phase.vision]                 # every role in one phase
    weight = "bf16"
    [ff1]                          # one role
    weight = "bfp4_b"
    fidelity = "lofi"
    [attention.decode]             # one role in one phase
    fidelity = "hifi2"
    [large.ff1]                    # one role when the text width is 8192 or more (70B-class)
    weight = "bfp4_b"

For each key the most specific entry wins: role and phase, then phase, then the large-model
role entry, then role, then default. What each key changes:

- ``weight``: the format of every matmul weight of the role (block formats are laid out for
  matmul weights only; other parameters keep the lowering's format);
- ``activation``: the result format of the role's matmuls, and for ``kv_cache`` the cache
  tensors (a decode step's new rows are cast to it before the in-place append; a prefill's cache
  is a cast of the K and V it computed); other ops keep the lowering's activation format;
- ``fidelity``: the math fidelity of the role's matmuls, convolutions and attention, which the
  roofline's compute rate reads (``Node.fidelity``).

The policy's name (or file) is stored in ``graph.meta["precision"]``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import attrs
from attrs import field, frozen

from irperf.checks import parse_toml, read_input_text, show
from irperf.dtypes import DTYPES, DType
from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.ops import CacheAppend, Input, MatMul, Op, Typecast, Weight
from irperf.ops.taxonomy import CONTRACTIONS
from irperf.pass_manager import Pass, PassResult, register_pass
from irperf.roles import LINEAR_ROLES, ROLES, Role
from irperf.types import TensorType

PHASES = ("vision", "prefill", "decode")
KEYS = ("weight", "activation", "fidelity")
FIDELITIES = ("lofi", "hifi2", "hifi3", "hifi4")
LARGE_TEXT_WIDTH = 8192
"""A text decoder this wide is 70B-class (90B Vision), where ``large.*`` entries apply."""
VISION_STAGES = frozenset({"vision", "projector"})


@frozen
class Choice:
    """One entry of a policy: any of the three keys, None where it says nothing."""

    weight: DType | None = None
    activation: DType | None = None
    fidelity: str | None = None

    def over(self, other: Choice) -> Choice:
        """This entry where it says something, ``other`` elsewhere."""
        return Choice(
            self.weight or other.weight,
            self.activation or other.activation,
            self.fidelity or other.fidelity,
        )


@frozen
class Policy:
    """A parsed policy: its name (a preset's, or the file it came from) and its entries."""

    name: str
    description: str
    default: Choice
    phases: Mapping[str, Choice]
    roles: Mapping[Role, Choice]
    role_phases: Mapping[tuple[Role, str], Choice]
    large: Mapping[Role, Choice]

    def choice(self, role: Role | None, phase: str, large: bool) -> Choice:
        out = self.default
        if role is not None:
            out = self.roles.get(role, Choice()).over(out)
            if large:
                out = self.large.get(role, Choice()).over(out)
        out = self.phases.get(phase, Choice()).over(out)
        if role is not None:
            out = self.role_phases.get((role, phase), Choice()).over(out)
        return out


def _data() -> Any:
    return resources.files("passes").joinpath("data", "precision")


def preset_names() -> list[str]:
    return sorted(
        f.name.removesuffix(".toml") for f in _data().iterdir() if f.name.endswith(".toml")
    )


def load_policy(name_or_path: str | os.PathLike[str] | Policy) -> Policy:
    """A preset by name (any case) or a policy read from a ``.toml`` file; every problem is a
    PassError naming the file, the table and the key."""
    if isinstance(name_or_path, Policy):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        raise PassError(
            f"a precision policy is a preset name or a .toml file, got {show(name_or_path)}"
        )
    text = os.fspath(name_or_path)
    if text.lower() in preset_names():
        return _preset(text.lower())
    path = Path(text)
    if path.suffix.lower() != ".toml" or not path.exists():
        valid = ", ".join(preset_names())
        raise PassError(f"unknown precision policy {show(text)}; valid: {valid}, or a .toml file")
    return _parse(text, read_input_text(text, f"precision policy {show(text)}", PassError))


@functools.cache
def _preset(name: str) -> Policy:
    """A shipped policy, parsed once per process (a sweep names the same few many times)."""
    return _parse(name, _data().joinpath(f"{name}.toml").read_text(encoding="utf-8"))


def _parse(name: str, source: str) -> Policy:
    where = f"precision policy {show(name)}"
    data = parse_toml(source, where, PassError)
    data = _table(where, "top level", data)
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise PassError(f"{where}: description must be text")
    default = _choice(where, "default", data.pop("default", {}))
    phases: dict[str, Choice] = {}
    for phase, entry in _table(where, "phase", data.pop("phase", {})).items():
        if phase not in PHASES:
            raise PassError(f"{where}: unknown phase {show(phase)}; valid: {', '.join(PHASES)}")
        phases[phase] = _choice(where, f"phase.{phase}", entry)
    large: dict[Role, Choice] = {}
    for role_name, entry in _table(where, "large", data.pop("large", {})).items():
        large[_role(where, f"large.{role_name}", role_name)] = _choice(
            where, f"large.{role_name}", entry
        )
    roles: dict[Role, Choice] = {}
    role_phases: dict[tuple[Role, str], Choice] = {}
    for role_name, entry in data.items():
        role = _role(where, role_name, role_name)
        entry = _table(where, role_name, entry)
        for phase in PHASES:
            if phase in entry:
                role_phases[(role, phase)] = _choice(
                    where, f"{role_name}.{phase}", entry.pop(phase)
                )
        roles[role] = _choice(where, role_name, entry)
    return Policy(name, description, default, phases, roles, role_phases, large)


def _table(where: str, key: str, value: object) -> dict[str, Any]:
    """A table with its keys in lower case (names match in any case); two keys that differ
    only in case contradict each other."""
    if not isinstance(value, dict):
        raise PassError(f"{where}: [{key}] must be a table, got {show(value)}")
    out: dict[str, Any] = {}
    for k, v in value.items():
        low = k.lower()
        if low in out:
            raise PassError(f"{where}: [{key}] gives {show(low)} twice (in different cases)")
        out[low] = v
    return out


def _role(where: str, key: str, name: str) -> Role:
    role = ROLES.get(name)
    if role is None:
        valid = ", ".join(sorted(ROLES))
        raise PassError(
            f"{where}: [{key}] is not a role (nor default, phase, large); roles: {valid}"
        )
    return role


def _choice(where: str, key: str, value: object) -> Choice:
    entry = _table(where, key, value)
    unknown = [k for k in entry if k not in KEYS]
    if unknown:
        raise PassError(
            f"{where}: [{key}] has unknown key {show(unknown[0])}; valid: {', '.join(KEYS)}"
        )
    formats: dict[str, DType | None] = {}
    for k in ("weight", "activation"):
        v = entry.get(k)
        if v is not None and (not isinstance(v, str) or v.lower() not in DTYPES):
            valid = ", ".join(sorted(DTYPES))
            raise PassError(f"{where}: [{key}] {k} = {show(v)} is not a format; valid: {valid}")
        formats[k] = DTYPES[v.lower()] if isinstance(v, str) else None
    fidelity = entry.get("fidelity")
    if fidelity is not None and (
        not isinstance(fidelity, str) or fidelity.lower() not in FIDELITIES
    ):
        raise PassError(
            f"{where}: [{key}] fidelity = {show(fidelity)}; valid: {', '.join(FIDELITIES)}"
        )
    return Choice(formats["weight"], formats["activation"], fidelity.lower() if fidelity else None)


def node_phase(graph: Graph, node: Node) -> str:
    if node.stage in VISION_STAGES or graph.meta.get("part") == "vision":
        return "vision"
    phase = graph.meta.get("phase")
    return phase if phase in PHASES else "prefill"


def text_width(graph: Graph) -> int:
    """The text decoder's width, from its token-embedding table (0 if the graph has none)."""
    for n in graph:
        if n.role is Role.EMBED and n.stage == "text" and isinstance(n.op, Weight):
            return n.type.global_shape[-1]
    return 0


COMPUTE = CONTRACTIONS  # what a fidelity applies to


def apply_policy(graph: Graph, policy: Policy) -> Graph:
    """``graph`` with the policy's formats and fidelities; see the module docstring."""
    large = text_width(graph) >= LARGE_TEXT_WIDTH
    # Matmul weights: those a matmul reads, and a linear layer's resident ones (decode keeps
    # the cross-attention K/V projections it never runs: stored in the same format).
    matmul_weights = {n.operands[1] for n in graph if isinstance(n.op, MatMul)}
    matmul_weights |= {
        n.name
        for n in graph
        if isinstance(n.op, Weight) and n.role in LINEAR_ROLES and n.type.rank == 2
    }
    cache = set(graph.kv_cache.tensors)
    new = Graph.from_nodes((), like=graph)
    renamed: dict[str, str] = {}

    choices: dict[tuple[Role | None, str], Choice] = {}

    def choose(role: Role | None, phase: str) -> Choice:
        found = choices.get((role, phase))
        if found is None:
            found = choices[(role, phase)] = policy.choice(role, phase, large)
        return found

    def add(node: Node, name: str, op: Op, operands: list[str], **kw: Any) -> Node:
        kw.setdefault("role", node.role)
        same = name == node.name and op is node.op and operands == list(node.operands)
        if same and all(_same_type(new.node(o).type, graph.node(o).type) for o in operands):
            # The same op on the same types: the same type, no inference.
            changed = kw["role"] is not node.role or kw.get("fidelity") != node.fidelity
            kept = attrs.evolve(node, **kw) if changed else node
            new.insert(kept)
            return kept
        return new.add(name, op, operands, stage=node.stage, block=node.block, **kw)

    for node in graph:
        phase = node_phase(graph, node)
        choice = choose(node.role, phase)
        cache_format = choose(_cache_role(graph, node), phase).activation
        operands = list(node.operands)
        op = node.op
        if isinstance(op, Weight) and node.name in matmul_weights and choice.weight:
            op = attrs.evolve(op, type=_retyped(node.type, choice.weight))
        elif isinstance(op, Input) and node.name in cache and cache_format:
            op = attrs.evolve(op, type=_retyped(node.type, cache_format))
        elif isinstance(op, MatMul) and choice.activation:
            if choice.activation != graph.node(node.operands[0]).type.dtype:
                op = attrs.evolve(op, out_dtype=choice.activation)
        elif isinstance(op, CacheAppend):
            held = new.node(operands[0]).type.dtype
            if new.node(operands[1]).type.dtype != held:  # the new rows take the cache's format
                cast = add(node, f"{node.name}.cast", Typecast(dtype=held), [operands[1]])
                operands[1] = cast.name
        fidelity = choice.fidelity if isinstance(op, COMPUTE) else None
        made = add(node, node.name, op, operands, fidelity=fidelity)
        fills = node.name in cache and not isinstance(op, Input | CacheAppend)  # prefill
        if fills and cache_format and cache_format != made.type.dtype:
            cast = add(node, f"{node.name}.to_cache", Typecast(dtype=cache_format), [made.name])
            renamed[node.name] = cast.name
    if renamed:
        tensors = tuple(renamed.get(t, t) for t in graph.kv_cache.tensors)
        new.kv_cache = attrs.evolve(graph.kv_cache, tensors=tensors)
    new.meta["precision"] = policy.name
    return new


def _cache_role(graph: Graph, node: Node) -> Role:
    """Self-attention caches take ``kv_cache``'s activation format; a cross-attention layer's
    cached vision K/V take ``cross_kv``'s (tt-metal caches them in BF16)."""
    kind = graph.blocks.get(node.block) if node.block else None
    return Role.CROSS_KV if kind == "text.cross" else Role.KV_CACHE


def _same_type(a: TensorType, b: TensorType) -> bool:
    return a is b or a == b


def _retyped(t: TensorType, dtype: DType) -> TensorType:
    return TensorType(t.shape, dtype, t.layout)


def _policy(value: object) -> Policy:
    return load_policy(value)  # type: ignore[arg-type]


@register_pass
@frozen(kw_only=True)
class PrecisionPass(Pass):
    """Formats and fidelities per role and phase from a policy (a preset or a TOML file)."""

    name: ClassVar[str] = "precision"
    summary: ClassVar[str] = "data formats and math fidelity per role and phase"
    policy: Policy = field(factory=lambda: load_policy("tt-accuracy"), converter=_policy)

    def run(self, graph: Graph) -> PassResult:
        if "precision" in graph.meta:
            raise PassError(
                f"pass 'precision': the graph already has policy {show(graph.meta['precision'])}"
            )
        return PassResult(apply_policy(graph, self.policy), modified=True)
