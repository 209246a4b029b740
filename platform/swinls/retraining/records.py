"""Decision records that tell the truth about the champion pointer.

A verdict that moves the pointer (a promotion, an operator's rollback) is written as intended
(`…pending.json`: "promoting", "rolling-back", with the exact pointer it will write) before the
swap, and as done ("promoted", "rolled-back") or not ("kept", "abandoned") after it. A run killed
between the two leaves the intent. Any later run settles it from the pointer's history: if that
history holds the intended pointer, the swap happened; if the pointer has moved past the one the
intent replaces without it, the swap can never happen (every pointer's bytes are new, so the
pointer never returns to an old state). Only an intent whose pointer has not moved since is left,
for its own run's rerun to finish.
"""

from __future__ import annotations

from swinls import cas, storage
from swinls.retraining.registry import DECISIONS, ModelRegistry, now

PENDING, FINAL = ".pending.json", ".json"
# intended verdict → (done, not done)
OUTCOMES = {"promoting": ("promoted", "kept"), "rolling-back": ("rolled-back", "abandoned")}


def stamp() -> str:
    return now().replace("-", "").replace(":", "").replace("+0000", "Z")


class DecisionLog:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.root = registry.path(DECISIONS)

    def _names(self) -> list[str]:
        """The records' names; a writer killed mid-write leaves a hidden temporary file, not a record."""
        names = storage.list_files(self.root) if storage.exists(self.root) else {}
        return sorted(name for name in names if not name.startswith("."))

    def finals(self) -> list[dict]:
        """Every final record, oldest first (intents still pending are not decisions yet)."""
        return [storage.read_json(storage.join(self.root, n)) for n in self._names() if n.endswith(FINAL)]

    def find(self, key: str) -> tuple[dict, str] | None:
        """(record, its URI) of the latest run with this key, final or intended."""
        names = [n for n in self._names() if n.endswith((f"-{key}{FINAL}", f"-{key}{PENDING}"))]
        if not names:
            return None
        # a final record and its intent, both present: the run was cut off between writing one and
        # removing the other, and the final one is the truth
        name = max(names, key=lambda n: (n.split("-", 1)[0], n.endswith(PENDING) is False))
        uri = storage.join(self.root, name)
        return storage.read_json(uri), uri

    def write(self, key: str, record: dict, *, pending: bool = False) -> str:
        uri = storage.join(self.root, f"{stamp()}-{key}{PENDING if pending else FINAL}")
        storage.write_json_atomic(uri, record)
        return uri

    def finish(self, uri: str, record: dict, *, done: bool, reason: str | None = None) -> tuple[dict, str]:
        """The intent at `uri` as done or not: the final record written, then the intent removed."""
        intended = record["verdict"]
        record = dict(record, verdict=OUTCOMES[intended][0 if done else 1], settled=now())
        if reason is not None:
            record["reason"] = reason
        if not done:
            record["champion"] = dict(record["champion"], after=record["champion"]["before"])
        final = uri[:-len(PENDING)] + FINAL if uri.endswith(PENDING) else uri
        storage.write_json_atomic(final, record)
        if final != uri:
            storage.remove(uri)
        return record, final

    def pending(self) -> list[tuple[str, dict]]:
        out = []
        for name in self._names():
            if name.endswith(PENDING):
                uri = storage.join(self.root, name)
                try:
                    out.append((uri, storage.read_json(uri)))
                except FileNotFoundError:  # settled by another run meanwhile
                    continue
        return out

    def settle(self, log=print) -> list[tuple[dict, str]]:
        """Every intent whose outcome the pointer's history decides, recorded as done or not; the
        settled (record, URI) pairs."""
        intents = self.pending()
        if not intents:
            return []
        head = self.registry.head()
        history = {digest for digest, _ in self.registry.chain(head)}
        finals = {name for name in self._names() if not name.endswith(PENDING)}
        settled = []
        for uri, record in intents:
            if uri.rsplit("/", 1)[-1][:-len(PENDING)] + FINAL in finals:
                storage.remove(uri)  # its run was cut off after the final record, before removing this
                continue
            wrote = record.get("pointer_sha256")
            if wrote in history:
                settled.append(self.finish(uri, record, done=True))
                log(f"settled {uri}: the pointer's history shows its swap; {settled[-1][0]['verdict']}")
            elif record.get("pointer", {}).get("replaces") != head.digest:
                what = "promoted" if record["verdict"] == "promoting" else "rolled back"
                reason = (f"{record.get('reason', '')}; but the champion pointer changed after this was decided and "
                          f"before its swap, so {record['champion']['after']} was not {what}").lstrip("; ")
                settled.append(self.finish(uri, record, done=False, reason=reason))
                log(f"settled {uri}: superseded before its swap; {settled[-1][0]['verdict']}")
        return settled


def intent(record: dict, pointer: dict) -> dict:
    """`record` as the intent to write `pointer`."""
    return dict(record, pointer=pointer, pointer_sha256=cas.digest(cas.encode(pointer)))
