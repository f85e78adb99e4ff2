"""CTID's Technique Inference Engine training set: CTI reports and the techniques each mentions.

``data/raw/ctid_tie/ctid_tie_combined_dataset_full_frequency_2024-03.json`` holds 2,672 reports
(``reports[i].mitre_techniques``: ID -> number of mentions; ``origin_of_data``: where the report
comes from). A report counts once per technique it mentions, whatever the number of mentions.
"""

from __future__ import annotations

import json
from pathlib import Path

from attackprev.config import RAW_DIR
from attackprev.errors import InputError
from attackprev.evidence.ids import Decision, raw_key, resolve
from attackprev.evidence.raw.records import Counted, Left

TIE_JSON = RAW_DIR / "ctid_tie" / "ctid_tie_combined_dataset_full_frequency_2024-03.json"
SOURCE_ID = "ctid_tie_2024"
#: Reports of this origin are ATT&CK's own campaign records, counted by ``attack_campaigns_v18``.
LEFT_OUT_ORIGIN = "MITRE ATT&CK Campaigns"


def read_tie(decisions: dict[tuple[str, str], Decision], path: str | Path = TIE_JSON) -> tuple[Counted, list[Left]]:
    """Count, per technique, the TIE reports that mention it (ATT&CK campaign records left out).

    Parameters
    ----------
    decisions
        From :func:`attackprev.evidence.ids.load_decisions`.
    path
        The raw JSON file.

    Returns
    -------
    (Counted, list of Left)
        Members are ``report <id>``; ``trials`` is the number of reports kept.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    reports = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(reports, list) or not reports:
        raise InputError("expected an object with a non-empty 'reports' list", path)
    counted = Counted(SOURCE_ID, 0)
    left: list[Left] = []
    campaigns: list[str] = []
    ids_seen: set = set()
    for index, report in enumerate(reports):
        where = f"reports[{index}]"
        techniques = report.get("mitre_techniques") if isinstance(report, dict) else None
        if not isinstance(techniques, dict) or "id" not in report or "origin_of_data" not in report:
            raise InputError(f"{where} lacks 'id', 'origin_of_data' or a 'mitre_techniques' object", path)
        if report["id"] in ids_seen:
            raise InputError(f"{where} repeats report id {report['id']}", path)
        ids_seen.add(report["id"])
        member = f"report {report['id']}"
        if report["origin_of_data"] == LEFT_OUT_ORIGIN:
            campaigns.append(str(report["id"]))
            continue
        counted.trials += 1
        for raw_id, mentions in techniques.items():
            if not isinstance(mentions, int) or mentions < 1:
                raise InputError(f"{where} ({member}): {raw_id} has {mentions!r} mentions", path)
            res = resolve(raw_id, decisions, path, None)
            if res.technique_id is None:
                left.append(Left(raw_key(path), member, SOURCE_ID, res.raw_id, res.note))
                continue
            counted.add(res.technique_id, member, res.raw_id)
    if campaigns:
        left.append(
            Left(
                raw_key(path),
                "reports " + " ".join(campaigns),
                SOURCE_ID,
                "",
                f"left out: the {len(campaigns)} reports of origin '{LEFT_OUT_ORIGIN}' are ATT&CK's campaign "
                "records, counted by attack_campaigns_v18",
            )
        )
    counted.in_file = counted.trials
    return counted, left
