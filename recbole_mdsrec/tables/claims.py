"""The paper's qualitative claims about its comparison, checked on one dataset's runs.

MDSRec's paper reads three claims off its results table:

1. feature-aware models beat their ID-only versions (GRU4RecF > GRU4Rec, SASRecF > SASRec);
2. modality-based models beat ID-based ones;
3. MDSRec beats every baseline.

The baselines are the paper's eight and BERT4Rec, one more ID-based model (it makes claim 2
stricter, never looser); SGP4SR, the authors' later model, is in no claim (the table's own
verdict compares MDSRec with it).

Each claim is a set of directed pairs (the entry said to win, the entry it should beat), each
pair tested per user as the table's verdicts are (:func:`significance.per_user_test`: the
paired t-test over users of the seed-mean values), Holm-corrected across the pairs of that
claim. For claim 2 every modality-based baseline of the paper is paired with the strongest
ID-based model on the metric (the highest test mean): beating the strongest is what
"beats ID-based models" needs, and one opponent keeps the family small. A claim is

- **held** where every pair is significantly in the stated direction (p < 0.05, corrected);
- **partly held** where some are;
- **not held** where none is (a pair significantly the other way shows as ``<``);
- **not tested** where no pair could be tested (an entry missing, or no per-user metrics).

A pair whose losing side has not converged (a run at the epoch cap) does not count as won,
as in the table's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from recbole_mdsrec.tables import significance

ID_BASED = ("SASRec", "GRU4Rec", "BERT4Rec")
MODALITY_BASED = ("GRU4RecF", "SASRecF", "FDSA", "UniSRec", "MISSRec", "MMMLP")  # the paper's own baselines


@dataclass(frozen=True)
class Claim:
    """``winners`` should beat ``opponents``: pairwise (``zip``) when ``paired``, each winner
    against the strongest present opponent when ``strongest``, else each against each.
    ``opponents=None``: every other entry of the comparison."""

    key: str
    title: str      # short, for lists
    statement: str  # the claim as the tables state it
    winners: tuple[str, ...]
    opponents: tuple[str, ...] | None = None
    paired: bool = False
    strongest: bool = False

    def named(self) -> tuple[str, ...]:
        return self.winners + (self.opponents or ())

    def pairs(self, present: list[str], means: Mapping[str, float]) -> list[tuple[str, str]]:
        """(winner, opponent) of the entries present, in the claim's order."""
        if self.paired:
            return [(w, o) for w, o in zip(self.winners, self.opponents) if w in present and o in present]
        winners = [w for w in self.winners if w in present]
        opponents = [o for o in (self.opponents or present) if o in present and o not in winners]
        if self.strongest and opponents:
            opponents = [max(opponents, key=lambda label: means[label])]
        return [(w, o) for w in winners for o in opponents]


PAPER_CLAIMS = (
    Claim("features", "Feature-aware beats ID-only", "Feature-aware beats ID-only (GRU4RecF > GRU4Rec, SASRecF > SASRec)",
          ("GRU4RecF", "SASRecF"), ("GRU4Rec", "SASRec"), paired=True),
    Claim("modalities", "Modality-based beats ID-based",
          "Modality-based beats ID-based (each modality-based baseline > the strongest ID-based model)",
          MODALITY_BASED, ID_BASED, strongest=True),
    Claim("mdsrec", "MDSRec beats every baseline", "MDSRec beats every baseline (the paper's eight and BERT4Rec)",
          ("MDSRec",), ID_BASED + MODALITY_BASED),
)


SIGNS = {"better": ">", "worse": "<", "no difference": "≈", "not counted": ">"}
LEGEND = ("Each claim is a set of pairs (the entry said to win, the entry it should beat), each tested per user "
          "(paired t-test) and Holm-corrected across the pairs of the claim: held = every pair significantly "
          "better (p < 0.05), partly held = some, not held = none; \"(k of n)\" counts the pairs won, \"without\" "
          "names the entries whose runs are not in yet. `>` significantly better, `<` significantly worse, "
          "`≈` no significant difference (`recbole_mdsrec/tables/claims.py`).")


def pair_phrase(pair: dict) -> str:
    """``A > B (p=...)``: one pair's direction and its corrected per-user p."""
    if pair["outcome"] not in SIGNS:
        return f"{pair['winner']} vs {pair['opponent']}: not tested"
    shown = [] if pair["p"] is None else [significance.format_p(pair["p"])]
    if pair["outcome"] == "not counted":
        shown.append(f"{pair['opponent']} not converged, not counted")
    return f"{pair['winner']} {SIGNS[pair['outcome']]} {pair['opponent']}" + (f" ({', '.join(shown)})" if shown else "")


def check(claim: Claim, present: list[str], means: Mapping[str, float], runs: Mapping[str, dict | None],
          unconverged: set[str], metric: str) -> dict:
    """One claim on one metric: its status and each pair, as plain data (``summary.json``).

    ``means``: label -> test mean of ``metric``; ``runs``: label -> seed -> per-user arrays
    (None without them); ``unconverged``: labels with a run at the epoch cap."""
    pairs = claim.pairs(present, means)
    results = {pair: significance.per_user_test(runs[pair[0]], runs[pair[1]], metric)
               if runs.get(pair[0]) is not None and runs.get(pair[1]) is not None else None for pair in pairs}
    corrected = significance.holm({pair: r[1] if r else None for pair, r in results.items()})
    checked = []
    for (winner, opponent), result in results.items():
        p = corrected[(winner, opponent)]  # per-user t-test, Holm-corrected within the claim
        outcome = significance.direction(result[0], p) if result else "not tested"
        if outcome == "better" and opponent in unconverged:
            outcome = "not counted"
        checked.append({"winner": winner, "opponent": opponent, "outcome": outcome,
                        "mean_difference": result[0] if result else None, "p": p})
    return {"key": claim.key, "title": claim.title, "statement": claim.statement, "status": _status(checked),
            "missing": [label for label in dict.fromkeys(claim.named()) if label not in present],
            "pairs": checked}


def _status(pairs: list[dict]) -> str:
    won = sum(p["outcome"] == "better" for p in pairs)
    if all(p["outcome"] == "not tested" for p in pairs):
        return "not tested"
    if won == len(pairs):
        return "held"
    return "partly held" if won else "not held"


def check_all(present: list[str], means: Mapping[str, Mapping[str, float]], runs: Mapping[str, dict | None],
              unconverged: set[str], metrics: list[str],
              claims: tuple[Claim, ...] = PAPER_CLAIMS) -> dict[str, list[dict]]:
    """metric -> each claim checked (:func:`check`); ``means``: metric -> label -> test mean."""
    return {m: [check(c, present, means[m], runs, unconverged, m) for c in claims] for m in metrics}


def status_cell(checked: dict) -> str:
    """A claim's status with how many of its pairs won, e.g. ``partly held (2 of 6)``."""
    pairs = checked["pairs"]
    if checked["status"] == "not tested":
        return "not tested"
    won = sum(p["outcome"] == "better" for p in pairs)
    partial = f"; without {', '.join(checked['missing'])}" if checked["missing"] else ""
    return f"{checked['status']} ({won} of {len(pairs)}{partial})"


def detail_line(checked: dict, lead: str) -> str:
    """``- <lead>: status: pair; pair; ...``: each pair's direction and corrected p."""
    pairs = "; ".join(map(pair_phrase, checked["pairs"])) or "no pair present"
    return f"- {lead}: {status_cell(checked)}: {pairs}."
