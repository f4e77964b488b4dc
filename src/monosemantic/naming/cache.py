"""Prompts and answers kept on disk, keyed by a hash of everything that determines the answer (model, prompt,
decoding settings), so a rerun of `monosemantic name` asks no model anything it already answered.

One SQLite file: writes are atomic and several processes may share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError


def cache_key(*parts: Any) -> str:
    """A stable hash of everything an answer depends on (model, prompt, settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class AnswerCache:
    """``get(key)`` / ``put(key, prompt, answer)``; ``path=None`` keeps everything in memory (no disk)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hits = self.misses = 0
        target = ":memory:"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"--cache {path}: cannot create its folder ({exc.strerror}); choose another path"
                                ) from None
            target = str(path)
        try:
            self._db = sqlite3.connect(target, timeout=30)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, prompt TEXT, answer TEXT)")
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"--cache {path} is not a usable answer cache ({exc}); delete it or choose another path"
                            ) from None

    def get(self, key: str) -> Any | None:
        """The cached answer, or None."""
        row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, prompt: str, answer: Any) -> None:
        """Store an answer with its prompt."""
        self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", (key, prompt, json.dumps(answer)))
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        self._db.close()
