"""Submission times and the course's late policy, applied as ``nbgrader autograde`` applies them.

The time a submission was handed in is nbgrader's ``timestamp.txt`` beside the submitted
notebook (``submitted/<student>/<A>/timestamp.txt``), else the LMS export's upload time
(the record's ``submitted_at``). It goes into gradebook.db (``SubmittedAssignment.timestamp``);
the due date (``Assignment.duedate``) and a student's extension (``SubmittedAssignment.extension``)
stay where the instructor put them (``nbgrader db assignment add --duedate``, the API,
formgrader). The penalty is computed by nbgrader's own ``AssignLatePenalties`` step configured
from the course's ``nbgrader_config.py`` (``LateSubmissionPlugin.penalty_method`` ``none`` or
``zero``, or ``AssignLatePenalties.plugin_class`` naming a plugin of the course's own), so it is
the number autograde would store: ``SubmittedNotebook.late_submission_penalty``, computed from
the notebook's score (manual grades included).

A record's ``submitted_at`` is the LMS's upload time or, in an nbgrader tree, the
``timestamp.txt``'s (ISO 8601 UTC, set at discovery by ``stamp``); ``apply`` adds
``seconds_late``, ``late_penalty`` (points, 0 when on time or the policy is ``none``),
``late_policy`` and ``duedate`` (the student's, extension included). The record's points stay
as graded; ``grader.reports.records.finalise`` subtracts the penalty for every output
(``total`` is ``raw`` minus ``late_penalty``, as in nbgrader's own export), and ``backprop
report`` applies the policy again, since the penalty may depend on a score a TA has since adjusted.
"""
from __future__ import annotations

import contextlib
import datetime
import sys
import warnings
from pathlib import Path

TIMESTAMP = "timestamp.txt"


def timestamp_file(record: dict, root: Path | None = None) -> Path | None:
    """nbgrader's ``timestamp.txt`` beside the notebook a record was graded from, if any (a
    file tree only: a zip member has none). ``root``: the graded PATH; a record's ``source``
    is relative to it or to its parent."""
    source = record.get("source")
    if not source or "!" in str(source):
        return None
    bases = [Path(root).parent, Path(root)] if root is not None else [Path()]
    for base in bases:
        notebook = base / source
        if notebook.is_file() and (notebook.parent / TIMESTAMP).is_file():
            return notebook.parent / TIMESTAMP
    return None


def read_timestamp(path: Path) -> str | None:
    """A ``timestamp.txt`` as ISO 8601 UTC (None when empty or unreadable: nbgrader warns and
    treats it as no time)."""
    from nbgrader.utils import parse_utc

    try:
        when = parse_utc(Path(path).read_text(encoding="utf-8").strip() or None)
    except (OSError, ValueError, OverflowError):
        return None
    return when.replace(tzinfo=datetime.timezone.utc).isoformat(timespec="seconds") if when else None


def stamp(subs: list, root: Path) -> None:
    """Each discovered submission without the LMS's upload time gets its ``timestamp.txt``'s
    (nbgrader's submitted/ tree), before grading: the time is part of who-and-when, so a
    changed time is a changed submission."""
    for sub in subs:
        if sub.submitted_at is None:
            path = timestamp_file({"source": sub.source}, root)
            sub.submitted_at = read_timestamp(path) if path else None


def submission_time(record: dict) -> datetime.datetime | None:
    """When the record's notebook was handed in (its ``submitted_at``), naive UTC as nbgrader
    stores it (``nbgrader.utils.parse_utc``: a time without a zone is read as UTC)."""
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(record.get("submitted_at") or None)
    except (ValueError, OverflowError):
        return None  # an unreadable time is no time: never late rather than a guess


@contextlib.contextmanager
def _course_on_path(course: Path):
    """The course folder importable while its config loads, as nbgrader (run in the course
    folder) has it: a custom late-penalty plugin lives there."""
    path = str(Path(course).resolve())
    sys.path.insert(0, path)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(path)


def policy(course: Path):
    """nbgrader's ``AssignLatePenalties`` step configured from ``<course>/nbgrader_config.py``."""
    from nbgrader.preprocessors import AssignLatePenalties
    from traitlets.config.loader import PyFileConfigLoader

    config_file = Path(course) / "nbgrader_config.py"
    with _course_on_path(course):
        config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config() \
            if config_file.is_file() else None
        step = AssignLatePenalties(config=config) if config is not None else AssignLatePenalties()
        step.init_plugin()  # imports a custom plugin class now, with the course importable
    return step


def policy_name(step) -> str:
    plugin = type(step.plugin_inst)
    if plugin.__module__.startswith("nbgrader."):
        return f"nbgrader {getattr(step.plugin_inst, 'penalty_method', 'none')}"
    return f"{plugin.__module__}.{plugin.__qualname__}"


def notebook_score(nb, record: dict) -> float:
    """``SubmittedNotebook.score`` as it will be once this record's grades are in: the TA's
    manual score where there is one, else our automatic points for the cell, plus the TA's
    extra credit (``Grade.score``)."""
    auto = {t.get("grade_id"): float(t.get("auto_points", t.get("points")) or 0.0) for t in record.get("tests") or []}
    return sum((float(g.manual_score) if g.manual_score is not None
                else auto.get(g.name, float(g.auto_score or 0.0))) + float(g.extra_credit or 0.0) for g in nb.grades)


def apply(db_url: str, course: Path, assignment: str, records: list[dict], notebook: str | None = None) -> str:
    """Times, due dates, extensions and the late policy for ``records``, each updated in place;
    the submissions are created in gradebook.db when new (the automatic scores follow in
    ``gradebook``'s sync, which keeps these columns). Returns a note for the summary."""
    from nbgrader.api import Gradebook, MissingEntry

    from grader.authoring.course import scripts_on_path

    notebook = notebook or assignment
    step = policy(course)
    name = policy_name(step)
    late = penalised = 0
    with scripts_on_path(), warnings.catch_warnings(), _course_on_path(course):
        warnings.simplefilter("ignore")
        with Gradebook(db_url) as gb:
            try:
                due = gb.find_assignment(assignment).duedate
                gb.find_notebook(notebook, assignment)
            except MissingEntry:
                return f"late policy: assignment {assignment!r} not in {db_url}; no times recorded"
            for rec in records:
                student = rec["student"]
                when = submission_time(rec)
                gb.update_or_create_student(student)
                # as autograde: the time when one is known, else the database's stays
                sub = gb.update_or_create_submission(assignment, student, **({"timestamp": when} if when else {}))
                nb = gb.find_submission_notebook(notebook, assignment, student)
                seconds = float(sub.total_seconds_late or 0.0) if when is not None else 0.0
                penalty = None
                if seconds > 0:
                    late += 1
                    score = notebook_score(nb, rec)
                    penalty = step.plugin_inst.late_submission_penalty(student, score, seconds)
                    if penalty is not None:  # AssignLatePenalties' clamp: within [0, the notebook's score]
                        penalty = min(max(float(penalty), 0.0), score)
                        penalised += penalty > 0
                nb.late_submission_penalty = penalty
                gb.db.commit()
                rec["seconds_late"] = round(seconds, 3)
                rec["late_penalty"] = round(float(penalty or 0.0), 4)
                rec["late_policy"] = name
                rec["duedate"] = (sub.duedate.replace(tzinfo=datetime.timezone.utc).isoformat(timespec="seconds")
                                  if sub.duedate else None)
    if due is None:
        return f"late policy ({name}): no due date for {assignment!r} in gradebook.db; times recorded, nobody late"
    return f"late policy ({name}): {late} late submission(s), {penalised} penalised"


def describe(record: dict) -> str | None:
    """One line for feedback and reports: how late, and the penalty (None when on time)."""
    seconds = float(record.get("seconds_late") or 0.0)
    if seconds <= 0:
        return None
    from grader.grading.gradebook import fmt_points

    return (f"submitted {duration(seconds)} after the due date ({record.get('duedate') or 'with extension'}); "
            f"late penalty ({record.get('late_policy') or 'nbgrader'}): "
            f"{fmt_points(float(record.get('late_penalty') or 0.0))} point(s)")


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes and not days else []
    parts += [f"{secs} s"] if not parts else []
    return " ".join(parts)


def for_batch(course: Path, assignment: str, store, students: set[str]) -> str | None:
    """``backprop grade``'s step before its outputs: times and penalties into the records of
    ``students`` (saved) and gradebook.db. None when the course has no gradebook.db."""
    db = Path(course).resolve() / "gradebook.db"
    if not db.is_file():
        return None
    records = [r for r in store.all() if r.get("student") in students]
    try:
        note = apply(f"sqlite:///{db}", course, assignment, records)
    except Exception as e:  # noqa: BLE001 - grades are still written; say the late policy was not
        return f"late policy NOT applied ({type(e).__name__}: {e})"
    for rec in records:
        store.save(rec)
    return note
