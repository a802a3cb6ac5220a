"""The checker's report: every violation with its rule, address and message."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

#: report at most this many violations per rule in ``violations`` (all are counted)
MAX_PER_RULE = 20


# ---------------------------------------------------------------------------
@dataclass
class Violation:
    rule: str
    addr: Optional[int]
    message: str

    def text(self) -> str:
        return f"{self.rule}: {self.message}"

    def to_json(self) -> dict:
        return {"rule": self.rule, "addr": self.addr, "message": self.message}


@dataclass
class Report:
    ok: bool = True
    violations: List[str] = field(default_factory=list)
    violation_count: int = 0
    checked: Dict[str, int] = field(default_factory=dict)
    mapped: Dict[str, int] = field(default_factory=dict)
    items: List[Violation] = field(default_factory=list)
    by_rule: Dict[str, int] = field(default_factory=dict)
    mode: str = ""
    notes: List[str] = field(default_factory=list)

    def fail(self, msg: str, rule: str = "misc", addr: Optional[int] = None) -> None:
        self.ok = False
        self.violation_count += 1
        n = self.by_rule.get(rule, 0)
        self.by_rule[rule] = n + 1
        if n < MAX_PER_RULE:
            v = Violation(rule, addr, msg)
            self.items.append(v)
            self.violations.append(v.text())

    def fail_each(self, pfns, rule: str, text) -> None:
        """One violation per page-table page in ``pfns``: the first ``MAX_PER_RULE`` with
        ``text(pfn)``, the rest only counted."""
        for p in pfns[:MAX_PER_RULE]:
            self.fail(text(int(p)), rule, int(p) << 12)
        self.count(rule, len(pfns) - min(len(pfns), MAX_PER_RULE))

    def count(self, rule: str, n: int) -> None:
        """Count ``n`` further violations of ``rule`` beyond those reported one by one."""
        if n > 0:
            self.ok = False
            self.violation_count += n
            self.by_rule[rule] = self.by_rule.get(rule, 0) + n

    @property
    def rules(self) -> List[str]:
        return sorted(self.by_rule)

    def signature(self) -> Tuple[str, ...]:
        """The set of broken rules: what "fails the same way" means to the fuzzer."""
        return tuple(sorted(self.by_rule))

    def to_json(self) -> dict:
        return {"ok": self.ok, "mode": self.mode, "violation_count": self.violation_count,
                "violations": self.violations, "items": [v.to_json() for v in self.items],
                "by_rule": self.by_rule, "checked": self.checked, "mapped_bytes": self.mapped,
                "notes": self.notes}

    def text(self, limit: int = 40) -> List[str]:
        if self.ok:
            c = self.checked
            return [f"check: OK ({self.mode}; {c.get('leaf_runs', 0)} leaf runs, {c.get('walks', 0)} walks, "
                    f"{c.get('table_pages', 0)} table pages, {c.get('pieces', 0)} logged pieces)"] + \
                   [f"  note: {n}" for n in self.notes]
        out = [f"check: FAILED, {self.violation_count} violation(s) of {len(self.by_rule)} rule(s): "
               + ", ".join(f"{r} x{n}" for r, n in sorted(self.by_rule.items()))]
        out += [f"  {v}" for v in self.violations[:limit]]
        if len(self.violations) > limit:
            out.append(f"  ... {len(self.violations) - limit} more listed in --json")
        return out
