"""Errors that name the bad record and say how to fix it."""

from __future__ import annotations


class InputDataError(ValueError):
    """Raw input that cannot be read as it is.

    The message always names where (file, line or record id) and the fix.
    """

    def __init__(self, where: str, problem: str, fix: str):
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(f"{where}: {problem}. Fix: {fix}")


class IssueLog:
    """Counts non-fatal problems per kind and keeps a few named examples of each."""

    def __init__(self, max_examples: int = 5):
        self.max_examples = max_examples
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, where: str, detail: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < self.max_examples:
            examples.append(f"{where}: {detail}" if detail else where)

    def merge(self, other: IssueLog) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            room = self.max_examples - len(self.examples.setdefault(kind, []))
            self.examples[kind].extend(other.examples.get(kind, [])[: max(room, 0)])

    def summary_lines(self) -> list[str]:
        return [
            f"{kind}: {n} (e.g. {'; '.join(self.examples.get(kind, []))})"
            for kind, n in sorted(self.counts.items())
        ]
