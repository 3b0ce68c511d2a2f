"""Write `docs/configuration.md` from the Settings model: every setting, its variable, default and meaning.

python scripts/gen_config_docs.py          # rewrite docs/configuration.md
python scripts/gen_config_docs.py --check  # exit 1 if it is out of date (used by the tests)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headless_wan.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_env_example import default_text, env_name, write_or_check

REPO = Path(__file__).resolve().parent.parent

HEADER = """\
# Configuration reference

Generated from `headless_wan/config.py` by `scripts/gen_config_docs.py`; do not edit by hand (a test
fails when it is out of date). Settings come from environment variables or a `.env` file in the working
directory; a few also from flags (`python -m headless_wan --help`). Lists and maps are JSON. Durations
are seconds (`_s`), sizes MiB (`_mb`) or GiB (`_gb`). Secrets (`SecretStr`) never appear in logs or in
`doctor`'s report. The Reigh deployment names (`SUPABASE_URL`, `SUPABASE_SERVICE_ROLE_KEY`, `WORKER_ID`)
and `DATABASE_URL` also work with an `HW_` prefix.

Besides these, the Hugging Face variables apply as usual: `HF_HOME` / `HF_HUB_CACHE` (the model cache;
`doctor` checks its free disk) and `HF_TOKEN`.
"""

SECTIONS = (
    ("Queue", "queue"),
    ("Reigh", "reigh_pat"),
    ("Fleet (PostgreSQL queue, S3 storage)", "database_url"),
    ("Worker", "worker_id"),
    ("Task inputs", "download_max_mb"),
    ("Generation", "startup_check"),
    ("Operations", "metrics_port"),
    ("Logging", "log_level"),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    starts = {first: title for title, first in SECTIONS}
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        if name in starts:
            lines += ["", f"## {starts[name]}", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        default = default_text(field)
        shown = f"`{_cell(default)}`" if default else ("computed" if field.default_factory else "unset")
        lines.append(f"| `{env_name(name, field)}` | {shown} | {_cell(field.description or '')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--path", type=Path, default=REPO / "docs" / "configuration.md")
    args = parser.parse_args()
    return write_or_check(args.path, render(), check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    raise SystemExit(main())
