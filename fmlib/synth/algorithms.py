"""Operator graphs ("algorithms"), a registry of data selected by name.

Operators are named ``"C"`` (the carrier, the only one heard) and ``"M1"`` ..
``"M5"``. An edge ``(src, dst)`` means: the output of ``src``, scaled by its own
modulation index, is added to the phase of ``dst``. Parallel modulations into one
operator are summed. Adding a topology is adding one entry to :data:`ALGORITHMS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fmlib.errors import InputError

CARRIER = "C"
MODULATORS = ("M1", "M2", "M3", "M4", "M5")
OPERATORS = (CARRIER, *MODULATORS)


@dataclass(frozen=True)
class Algorithm:
    """A modulation graph over the 6 operators.

    Attributes:
        name: Registry key, also the patch JSON's ``"algorithm"`` value.
        edges: ``(modulator, target)`` pairs; every modulator has exactly one target.
        description: One line for docs and plots.
    """

    name: str
    edges: tuple[tuple[str, str], ...]
    description: str

    def sources(self, op: str) -> tuple[str, ...]:
        """Operators whose outputs modulate ``op``."""
        return tuple(src for src, dst in self.edges if dst == op)

    def render_order(self) -> tuple[str, ...]:
        """Operators ordered so that every modulator comes before its target."""
        order: list[str] = []

        def visit(op: str) -> None:
            for src in self.sources(op):
                visit(src)
            order.append(op)

        visit(CARRIER)
        return tuple(order)

    def target(self, op: str) -> str | None:
        """The operator ``op`` modulates (None for the carrier)."""
        return next((dst for src, dst in self.edges if src == op), None)

    def interchangeable(self) -> tuple[tuple[str, ...], ...]:
        """Groups of modulators that can swap their parameters without changing
        the sound.

        Two modulators are interchangeable when they modulate the same operator and
        nothing modulates them: each then adds ``index * sin(phase)`` to the same
        phase sum, and a sum does not depend on the order of its terms. A modulator
        has no other structural property in this synthesizer (no feedback, no own
        envelope, no output level), so these two conditions are the whole test.
        Modulators with sources are never grouped, even when their sub-graphs are
        alike: swapping them would have to swap whole stacks.

        Returns:
            Groups of at least two operator names, each group and the groups sorted
            (``(("M1", "M2"),)`` for ``dx7_18``; ``()`` for ``serial``).
        """
        by_target: dict[str, list[str]] = {}
        for op in MODULATORS:
            dst = self.target(op)
            if dst is not None and not self.sources(op):
                by_target.setdefault(dst, []).append(op)
        return tuple(
            sorted(tuple(sorted(ops)) for ops in by_target.values() if len(ops) > 1)
        )


def _check(alg: Algorithm) -> Algorithm:
    targets = {}
    for src, dst in alg.edges:
        if src not in MODULATORS or dst not in OPERATORS or src == dst:
            raise AssertionError(f"{alg.name}: bad edge {src}->{dst}")
        if src in targets:
            raise AssertionError(f"{alg.name}: {src} has two targets")
        targets[src] = dst
    if set(alg.render_order()) != set(OPERATORS):
        raise AssertionError(f"{alg.name}: not every operator reaches the carrier")
    return alg


ALGORITHMS: dict[str, Algorithm] = {
    a.name: _check(a)
    for a in (
        Algorithm(
            "serial",
            (("M5", "M4"), ("M4", "M3"), ("M3", "M2"), ("M2", "M1"), ("M1", "C")),
            "One stack: M5 -> M4 -> M3 -> M2 -> M1 -> carrier.",
        ),
        Algorithm(
            "dx7_18",
            (("M5", "M4"), ("M4", "M3"), ("M3", "C"), ("M1", "C"), ("M2", "C")),
            "DX7 algorithm 18 without feedback: M5 -> M4 -> M3 -> carrier, with M1 and "
            "M2 modulating the carrier in parallel (the paper's algorithm).",
        ),
    )
}

DEFAULT_ALGORITHM = "dx7_18"


def get_algorithm(name: str) -> Algorithm:
    """Look up an algorithm by name; raises :class:`InputError` listing valid names."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(ALGORITHMS))
        raise InputError(
            f"algorithm: unknown algorithm {name!r}; valid: {valid}"
        ) from None
