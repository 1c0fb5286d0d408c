"""docs/known-deviations.md is `losscheck list --known`: regenerate it with
`losscheck list --known > docs/known-deviations.md` when a spec's recorded behaviour changes."""
from pathlib import Path

from losscheck import catalog
from losscheck.known import markdown, rows

DOC = Path(__file__).resolve().parents[1] / "docs" / "known-deviations.md"


def test_known_deviations_doc_is_current():
    assert DOC.read_text() == markdown(catalog.all_specs()), \
        "docs/known-deviations.md is stale: run `losscheck list --known > docs/known-deviations.md`"


def test_every_recorded_behaviour_has_a_reason():
    for spec_id, kind, scope, reason, link in rows(catalog.all_specs()):
        assert len(reason) > 20, f"{spec_id}: {kind} ({scope}) needs a reason"


def test_readme_code_table_is_current():
    """README's diagnosis-code table is `losscheck codes` (regenerate it when a code is added)."""
    from pathlib import Path

    from losscheck.diagnoses import codes_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert codes_markdown().strip() in readme
